"""Trigger-time refusals and webhooks through the running embedded stack (api-server with the plugin, scheduler,
LocalExecutor): another bucket is a 400 on Airflow's own trigger endpoint and on the plugin's; an SSRF callback
is a 400 on the plugin's; a real run tells a loopback receiver (allowlisted by name) with a signed event."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import METRICS_TOKEN, WEBHOOK_HOST, WEBHOOK_SECRET
from tests.integration.integrations.test_webhooks import receiver_verifies
from tests.receivers import Listener, Receiver
from vodflow import layout
from vodflow.devtools.client import ApiError
from vodflow.devtools.upload_client import upload

pytestmark = pytest.mark.e2e
DAG = "transcode_video"


def start(stack, conf: Any, user: str = "admin", token: str | None = None) -> requests.Response:
    client = stack.client if user == "admin" else stack.airflow.client(user)
    headers = {"Authorization": f"Bearer {token if token is not None else client.token()}"}
    return requests.post(f"{stack.airflow.base_url}/vodflow/api/videos", json=conf, headers=headers, timeout=60)


def test_a_source_in_another_bucket_is_refused_by_airflows_trigger_endpoint(embedded_stack):
    for _ in range(4):  # the embedded stack's SQLite can be locked by the dag-processor for a moment (a 500)
        with pytest.raises(ApiError) as caught:
            embedded_stack.client.trigger(DAG, {"source": "s3://someone-elses-bucket/uploads/x.mp4"})
        if caught.value.status_code < 500:
            break
        time.sleep(2)
    assert caught.value.status_code == 400 and "source" in str(caught.value.detail)


def test_the_plugin_trigger_checks_every_field_before_a_run_exists(embedded_stack):
    stack = embedded_stack
    listener = Listener()
    try:
        refusals = [
            ({"source": "s3://someone-elses-bucket/uploads/x.mp4"}, "source"),
            ({"source": "s3://vodflow/uploads/x.mp4", "bogus": 1}, "bogus"),
            ({"title": "no source"}, "source"),
            ({"source": "s3://vodflow/uploads/x.mp4", "callback_url": "http://169.254.169.254/latest/meta-data"},
             "callback_url"),
            ({"source": "s3://vodflow/uploads/x.mp4", "callback_url": f"http://127.0.0.1:{listener.port}/"},
             "callback_url"),
            ({"source": "s3://vodflow/uploads/x.mp4", "callback_url": f"http://[::1]:{listener.port}/"},
             "callback_url"),
            ({"source": "s3://vodflow/uploads/x.mp4", "callback_url": "http://10.0.0.8/hook"}, "callback_url"),
        ]
        for conf, field in refusals:
            refused = start(stack, conf)
            assert refused.status_code == 400 and field in refused.json()["detail"], (conf, refused.text)
        assert listener.connections == 0
    finally:
        listener.stop()
    assert start(stack, {"source": "s3://vodflow/uploads/x.mp4"}, user="viewer").status_code == 403
    assert start(stack, {"source": "s3://vodflow/uploads/x.mp4"}, token="forged").status_code in (401, 403)


def test_a_run_started_by_the_plugin_sends_a_signed_ready_event(embedded_stack, media):
    stack = embedded_stack
    receiver = Receiver(answers=[503, 200])  # the first delivery meets a failing receiver: retried
    try:
        key = f"uploads/hooks-{uuid.uuid4().hex[:8]}/hooked.mp4"
        stack.storage.client.upload_file(str(media["small"]), "vodflow", key)
        video_id = f"hook-{uuid.uuid4().hex[:8]}"
        callback = f"http://{WEBHOOK_HOST}:{receiver.port}/hooks/vodflow"
        response = start(stack, {"source": f"s3://vodflow/{key}", "video_id": video_id, "callback_url": callback})
        assert response.status_code == 202, response.text
        run = stack.client.wait_for_run(DAG, response.json()["dag_run_id"], timeout=300)
        assert run["state"] == "success"
        deadline = time.monotonic() + 30
        while len(receiver.received) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        # video.playable (early playback: retried after the 503), then video.ready.
        assert [json.loads(r.body)["type"] for r in receiver.received] == ["video.playable", "video.playable",
                                                                           "video.ready"]
        for got in receiver.received:
            assert receiver_verifies(got.headers["Vodflow-Signature"], got.body, WEBHOOK_SECRET)
        event = json.loads(receiver.received[-1].body)
        assert (event["type"], event["video_id"], event["version"]) == ("video.ready", video_id, 1)
        assert event["master_uri"] == f"s3://vodflow/videos/{video_id}/v1/hls/master.m3u8"
    finally:
        receiver.stop()


def test_a_multipart_upload_through_the_plugin_resumes_after_an_interruption(embedded_stack, tmp_path, media):
    stack = embedded_stack
    path = tmp_path / "large.mp4"
    path.write_bytes(os.urandom(12 * 1024 * 1024))
    state = tmp_path / "state"
    first = upload(stack.client, path, state, multipart=True, max_parts=1)  # the process "dies" after a part
    assert first.parts_sent == 1 and not first.resumed
    [pending] = [json.loads(p.read_text()) for p in state.glob("*.json")]
    status = stack.client.request("GET", f"/vodflow/api/uploads/{pending['id']}")
    assert [p["part_number"] for p in status["received"]] == [1]
    assert [(p["part_number"], p["size"]) for p in status["missing"]] == [(2, 5 * 2**20), (3, 2 * 2**20)]
    refused = requests.post(f"{stack.airflow.base_url}/vodflow/api/uploads/{pending['id']}/complete",
                            json={"parts": [{"part_number": 1, "etag": status["received"][0]["etag"]}]},
                            headers={"Authorization": f"Bearer {stack.client.token()}"}, timeout=30)
    assert refused.status_code == 409 and "part 2" in refused.json()["detail"]
    anonymous = requests.get(f"{stack.airflow.base_url}/vodflow/api/uploads/{pending['id']}", timeout=30)
    assert anonymous.status_code in (401, 403)

    second = upload(stack.client, path, state, multipart=True)  # run again: only the missing parts go
    assert second.resumed and second.parts_sent == 2 and second.source == pending["source"]
    key = layout.parse_source_uri(second.source).key
    assert stack.storage.client.get_object(Bucket="vodflow", Key=key)["Body"].read() == path.read_bytes()
    assert list(state.glob("*.json")) == []

    aborted = stack.client.request("POST", "/vodflow/api/uploads", json={"filename": "x.mp4", "size": 6 * 2**20,
                                                                          "multipart": True})
    assert aborted["method"] == "multipart" and len(aborted["parts"]) == 2
    stack.client.request("DELETE", f"/vodflow/api/uploads/{aborted['id']}")
    with pytest.raises(ApiError) as caught:
        stack.client.request("GET", f"/vodflow/api/uploads/{aborted['id']}")
    assert caught.value.status_code == 404

    result = subprocess.run(  # noqa: S603 - the CLI as a user runs it
        [sys.executable, "-m", "vodflow.cli", "submit", str(media["small"]), "--api", stack.airflow.base_url,
         "--multipart", "--no-wait", "--ladder", "240p"], capture_output=True, text=True, timeout=120,
        env={**os.environ, "VODFLOW_PASSWORD": stack.client.password, "XDG_STATE_HOME": str(tmp_path / "xdg")},
        check=False)
    assert result.returncode == 0, result.stderr
    assert "uploaded small.mp4 -> s3://vodflow/uploads/" in result.stdout and "MiB" in result.stderr


def test_metrics_are_scraped_with_the_token_only(embedded_stack, media):
    stack = embedded_stack
    url = f"{stack.airflow.base_url}/vodflow/metrics"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {stack.client.token()}"}):
        assert requests.get(url, headers=headers, timeout=30).status_code == 401, headers  # an Airflow JWT: no

    def scrape() -> dict[tuple[str, tuple], float]:
        response = requests.get(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=30)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(response.text) for s in family.samples}

    before = scrape()
    key = f"uploads/metrics-{uuid.uuid4().hex[:8]}/m.mp4"
    stack.storage.client.upload_file(str(media["small"]), "vodflow", key)
    run_id = stack.client.trigger(DAG, {"source": f"s3://vodflow/{key}", "ladder": ["240p"]})
    assert stack.client.wait_for_run(DAG, run_id, timeout=300)["state"] == "success"
    after = scrape()
    ready = ("vodflow_videos", (("status", "ready"),))
    encodes = ("vodflow_encode_seconds_count", (("rendition", "240p"),))
    # Other tests' runs may finish meanwhile in this shared stack: at least this one moved the counters.
    assert after[ready] >= before[ready] + 1
    assert after[encodes] >= before.get(encodes, 0) + 1
    assert ("vodflow_transcode_tasks_waiting", ()) in after
