"""Multipart uploads through presigned URLs over real HTTP to the S3 endpoint (moto's server): a dropped part
sent again, resume from the list of parts, complete → the same bytes; refusals; abort; stale uploads aborted."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import requests
from botocore.exceptions import ClientError

from tests.integration.triggers.test_uploads import ACCESS_KEY, SECRET, gated_storage  # noqa: F401 - the fixture
from tests.s3gateway import check_presigned
from vodflow.storage import Storage
from vodflow.triggers import multipart
from vodflow.triggers.uploads import UploadRequest, check_request

pytestmark = pytest.mark.integration
MiB = 1024 * 1024


@pytest.fixture
def storage(airflow_env) -> Storage:
    return Storage("aws_default", "vodflow")


@pytest.fixture(scope="module")
def payload() -> bytes:
    return os.urandom(30 * MiB)


def put(url: str, data: bytes) -> str:
    response = requests.put(url, data=data, timeout=60)
    assert response.status_code == 200, response.text
    return response.headers["ETag"].strip('"')


def put_and_drop(url: str, data: bytes) -> None:
    """Send the request line, headers and half the body, then cut the connection (a dropped Wi-Fi)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                     f"Content-Length: {len(data)}\r\n\r\n".encode() + data[: len(data) // 2])


def test_part_sizes_fit_s3s_limits():
    for size in (1, 5 * MiB, 30 * MiB, 20 * 1024 * MiB, multipart.MAX_OBJECT_BYTES):
        part = multipart.part_size_for(size)
        parts = multipart.plan_parts(size, part)
        assert part >= multipart.MIN_PART_BYTES and len(parts) <= multipart.MAX_PARTS
        assert sum(length for _, length in parts) == size and all(0 < length <= part for _, length in parts)
    assert multipart.part_size_for(20 * 1024 * MiB) == 16 * MiB  # 1,280 parts of the preferred size
    assert len(multipart.plan_parts(multipart.MAX_OBJECT_BYTES, multipart.part_size_for(multipart.MAX_OBJECT_BYTES))
               ) <= 10_000


def test_a_30_mib_upload_in_parts_with_a_drop_and_a_resume(storage, payload):
    request = UploadRequest("big.mp4", "video/mp4", len(payload))
    grant = multipart.start(storage, request, 600, preferred_part=10 * MiB)
    assert grant["method"] == "multipart" and grant["key"].startswith("uploads/")
    urls = {p["part_number"]: p for p in grant["parts"]}
    assert sorted(urls) == [1, 2, 3] and {p["size"] for p in grant["parts"]} == {10 * MiB}
    assert all(urlsplit(p["url"]).hostname == "127.0.0.1" for p in grant["parts"])  # straight to S3

    def chunk(n: int) -> bytes:
        return payload[(n - 1) * 10 * MiB : n * 10 * MiB]

    etags = {1: put(urls[1]["url"], chunk(1))}
    put_and_drop(urls[2]["url"], chunk(2))
    loaded = multipart.load(storage, grant["id"])
    state = multipart.status(storage, loaded, 600)
    assert [p["part_number"] for p in state["received"]] == [1]  # the dropped part is not there
    assert [p["part_number"] for p in state["missing"]] == [2, 3]
    etags[2] = put(state["missing"][0]["url"], chunk(2))  # resumed with a fresh URL
    assert put(urls[2]["url"], chunk(2)) == etags[2]  # sent twice: the same part, the same ETag
    state = multipart.status(storage, loaded, 600)
    assert [(p["part_number"], p["etag"]) for p in state["received"]] == [(1, etags[1]), (2, etags[2])]
    assert state["received_bytes"] == 20 * MiB
    etags[3] = put(state["missing"][0]["url"], chunk(3))
    with pytest.raises(multipart.UploadConflict, match="ETag"):
        multipart.complete(storage, loaded, {"parts": [{"part_number": n, "etag": "0" * 32} for n in (1, 2, 3)]})
    done = multipart.complete(storage, loaded,
                              {"parts": [{"part_number": n, "etag": etag} for n, etag in etags.items()]})
    assert done["size"] == len(payload) and done["source"] == f"s3://vodflow/{grant['key']}"
    body = storage.client.get_object(Bucket="vodflow", Key=grant["key"])["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(payload).digest()
    with pytest.raises(multipart.UploadNotFound):  # completed: the grant is gone
        multipart.load(storage, grant["id"])


def test_a_missing_part_or_more_bytes_than_granted_is_refused(storage, payload):
    grant = multipart.start(storage, UploadRequest("short.mp4", "video/mp4", 25 * MiB), 600, 10 * MiB)
    loaded = multipart.load(storage, grant["id"])
    first = put(grant["parts"][0]["url"], payload[: 10 * MiB])
    with pytest.raises(multipart.UploadConflict, match="part 2 has not been uploaded"):
        multipart.complete(storage, loaded, {"parts": [{"part_number": 1, "etag": first}]})
    # A client holding S3 credentials of its own (not the presigned URLs) sends a larger last part.
    second = storage.client.upload_part(Bucket="vodflow", Key=loaded.key, UploadId=loaded.upload_id, PartNumber=2,
                                        Body=payload[10 * MiB : 20 * MiB])["ETag"].strip('"')
    third = storage.client.upload_part(Bucket="vodflow", Key=loaded.key, UploadId=loaded.upload_id, PartNumber=3,
                                       Body=payload[20 * MiB : 30 * MiB])["ETag"].strip('"')
    parts = [{"part_number": n, "etag": e} for n, e in ((1, first), (2, second), (3, third))]
    with pytest.raises(multipart.UploadConflict, match="the grant is for"):
        multipart.complete(storage, loaded, {"parts": parts})
    with pytest.raises(ValueError, match="parts is required"):
        multipart.complete(storage, loaded, {})
    assert storage.list_keys(loaded.key) == []  # nothing was assembled
    multipart.abort(storage, loaded)


def test_abort_removes_the_upload_and_its_parts(storage, payload):
    grant = multipart.start(storage, UploadRequest("gone.mp4", "video/mp4", 12 * MiB), 600, 10 * MiB)
    loaded = multipart.load(storage, grant["id"])
    put(grant["parts"][0]["url"], payload[: 10 * MiB])
    multipart.abort(storage, loaded)
    assert loaded.upload_id not in {u["UploadId"] for u in storage.list_multipart_uploads("uploads/")}
    with pytest.raises(ClientError):
        storage.client.list_parts(Bucket="vodflow", Key=loaded.key, UploadId=loaded.upload_id)
    with pytest.raises(multipart.UploadNotFound):
        multipart.load(storage, grant["id"])
    multipart.abort(storage, loaded)  # twice is fine


def test_stale_uploads_are_aborted(storage):
    fresh = multipart.load(storage, multipart.start(
        storage, UploadRequest("fresh.mp4", "video/mp4", 6 * MiB), 600)["id"])
    multipart.abort_stale(storage, timedelta(hours=24))
    assert fresh.upload_id in {u["UploadId"] for u in storage.list_multipart_uploads("uploads/")}
    later = datetime.now(UTC) + timedelta(hours=25)
    assert multipart.abort_stale(storage, timedelta(hours=24), now=later) >= 1
    assert fresh.upload_id not in {u["UploadId"] for u in storage.list_multipart_uploads("uploads/")}
    with pytest.raises(multipart.UploadNotFound):
        multipart.load(storage, fresh.id)


def test_a_part_url_is_signed_for_its_exact_length(gated_storage, payload):  # noqa: F811 - the fixture
    """Through a gateway that checks SigV4 query signatures as AWS and MinIO do (moto does not): a part URL
    accepts exactly its planned length, so no client holding only the URLs can send more than the grant."""
    storage, gateway = gated_storage
    grant = multipart.start(storage, UploadRequest("signed.mp4", "video/mp4", 12 * MiB), 600, 10 * MiB)
    first, last = grant["parts"]
    assert requests.put(first["url"], data=payload[: 10 * MiB + 1], timeout=60).status_code == 403
    assert requests.put(last["url"], data=payload[: 3 * MiB], timeout=60).status_code == 403
    assert "SignatureDoesNotMatch" in gateway.refusals
    put(first["url"], payload[: 10 * MiB])
    put(last["url"], payload[: 2 * MiB])
    loaded = multipart.load(storage, grant["id"])
    state = multipart.status(storage, loaded, 600)
    assert state["missing"] == [] and state["received_bytes"] == 12 * MiB
    multipart.abort(storage, loaded)


@pytest.mark.parametrize(("size", "count"), [(10 * 1024 * MiB, 640), (10_000 * 16 * MiB, 10_000),
                                            (multipart.MAX_OBJECT_BYTES, 9_987)], ids=["10GiB", "10000parts", "5TiB"])
def test_a_large_grant_is_answered_quickly_with_every_part_signed(storage, size, count):
    """A grant signed each part with a client of its own (≈ 0.2 s each: 145 s for 10 GiB). Here 640 parts,
    10,000 (the most S3 allows) and S3's 5 TiB (``max_size_bytes`` raised) are granted and resumed quickly
    (times printed; the signing itself ≈ 0.06 s for 10,000); every URL passes the gateway's own SigV4 check for
    its part's exact length (the connection's key is the gateway's), and one is sent. Straight to the S3 server:
    the gateway answers no ``Expect: 100-continue``, so each PUT through it waits botocore's 1 s."""
    request = check_request({"filename": "huge.mp4", "content_type": "video/mp4", "size": size},
                            multipart.MAX_OBJECT_BYTES)
    storage.presigned_put("uploads/warm-up.mp4", "video/mp4", 1, 60)  # clients: once a process (upload_routes)
    started = time.perf_counter()
    grant = multipart.start(storage, request, 3600)
    answer = json.dumps(grant)  # what the route sends
    granted = time.perf_counter() - started
    loaded = multipart.load(storage, grant["id"])
    started = time.perf_counter()
    state = multipart.status(storage, loaded, 3600)
    resumed = time.perf_counter() - started
    parts = grant["parts"]
    print(f"\n{size / (1024 * MiB):.0f} GiB: {len(parts)} parts granted in {granted:.3f} s "
          f"({len(answer) / 1e6:.1f} MB of JSON), status with every part missing in {resumed:.3f} s")
    try:
        assert len(parts) == count
        assert granted < 5 and resumed < 5
        assert [p["part_number"] for p in state["missing"]] == [p["part_number"] for p in parts]
        for part in parts + state["missing"]:
            split = urlsplit(part["url"])
            headers = {"Host": split.netloc, "Content-Length": str(part["size"])}
            assert check_presigned("PUT", f"{split.path}?{split.query}", headers, {ACCESS_KEY: SECRET}) is None, part
        split = urlsplit(parts[-2]["url"])  # another length: refused
        assert check_presigned("PUT", f"{split.path}?{split.query}", {"Host": split.netloc, "Content-Length": "1"},
                               {ACCESS_KEY: SECRET}) == "SignatureDoesNotMatch"
        if parts[1]["size"] <= 16 * MiB:  # one part sent
            middle = parts[len(parts) // 2]
            put(middle["url"], os.urandom(middle["size"]))
            assert [p["part_number"] for p in multipart.status(storage, loaded, 600)["received"]] == [
                middle["part_number"]]
    finally:
        multipart.abort(storage, loaded)
