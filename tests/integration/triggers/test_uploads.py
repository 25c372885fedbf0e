"""Presigned direct uploads over real HTTP, with S3's checks (signature, expiry) in front of the local server."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import pytest
import requests

from tests.s3gateway import PresignCheckingGateway
from vodflow.storage import Storage
from vodflow.triggers.uploads import UploadRequest, grant_upload

pytestmark = pytest.mark.integration
ACCESS_KEY, SECRET = "vodflow-test", "vodflow-test-secret"


@pytest.fixture
def gated_storage(s3: str, airflow_env) -> Iterator[tuple[Storage, PresignCheckingGateway]]:
    """Storage whose Airflow connection points at the checking gateway, as it would at AWS or MinIO."""
    gateway = PresignCheckingGateway(s3, {ACCESS_KEY: SECRET}).start()
    saved = os.environ.get("AIRFLOW_CONN_VODFLOW_GATED")
    os.environ["AIRFLOW_CONN_VODFLOW_GATED"] = json.dumps({
        "conn_type": "aws", "login": ACCESS_KEY, "password": SECRET,
        "extra": {"endpoint_url": gateway.endpoint, "region_name": "us-east-1"}})
    try:
        yield Storage("vodflow_gated", "vodflow"), gateway
    finally:
        gateway.stop()
        if saved is None:
            os.environ.pop("AIRFLOW_CONN_VODFLOW_GATED", None)
        else:
            os.environ["AIRFLOW_CONN_VODFLOW_GATED"] = saved


def _put(grant, body: bytes, **headers: str) -> requests.Response:
    return requests.put(grant.url, data=body, headers={**grant.headers, **headers}, timeout=30)


def test_presigned_put_round_trip(gated_storage, media):
    storage, gateway = gated_storage
    body = media["small"].read_bytes()
    grant = grant_upload(storage, UploadRequest("clip.mp4", "video/mp4", len(body)), expires_in=600)
    assert grant.key.startswith("uploads/") and grant.key.endswith("/clip.mp4")
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in grant.url and "content-length" in grant.url.lower()
    response = _put(grant, body)
    assert response.status_code == 200, response.text
    head = storage.client.head_object(Bucket="vodflow", Key=grant.key)
    assert head["ContentLength"] == len(body)
    assert head["ContentType"] == "video/mp4"
    assert storage.client.get_object(Bucket="vodflow", Key=grant.key)["Body"].read() == body
    assert gateway.refusals == []


def test_presigned_put_refuses_another_size_type_or_key(gated_storage):
    storage, gateway = gated_storage
    grant = grant_upload(storage, UploadRequest("clip.mp4", "video/mp4", 1000), expires_in=600)
    assert _put(grant, b"x" * 999).status_code == 403  # not the declared size
    assert _put(grant, b"x" * 1001).status_code == 403
    assert _put(grant, b"x" * 1000, **{"Content-Type": "text/html"}).status_code == 403
    other_key = grant.url.replace("/clip.mp4?", "/other.mp4?")
    assert requests.put(other_key, data=b"x" * 1000, headers=grant.headers, timeout=30).status_code == 403
    longer = grant.url.replace("X-Amz-Expires=600", "X-Amz-Expires=604800")
    assert requests.put(longer, data=b"x" * 1000, headers=grant.headers, timeout=30).status_code == 403
    assert set(gateway.refusals) == {"SignatureDoesNotMatch"}
    assert storage.list_keys(grant.key.rsplit("/", 1)[0] + "/") == []
    assert _put(grant, b"x" * 1000).status_code == 200  # the untampered request still works


def test_expired_presigned_put_is_refused(gated_storage):
    storage, gateway = gated_storage
    grant = grant_upload(storage, UploadRequest("late.mp4", "video/mp4", 10), expires_in=1)
    time.sleep(2.2)
    response = _put(grant, b"0123456789")
    assert response.status_code == 403 and "AccessDenied" in response.text
    assert gateway.refusals == ["AccessDenied"]
    assert storage.list_keys(grant.key) == []
