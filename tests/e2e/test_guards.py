"""The trigger guards and the API's documentation through the running embedded stack: no run replaces another
video's content (the checked trigger and Airflow's own endpoint answer 400, a run started past them fails at
register as ``invalid_request`` and the video's media and row are unchanged); Airflow's own endpoint refuses what
the checked trigger refuses (an SSRF callback: 400; a body over 1 MiB: 413, never waved through); the API docs
need a login."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import pytest
import requests

from tests.e2e.test_stall import metadata_locked
from vodflow import errors, layout

pytestmark = pytest.mark.e2e
DAG = "transcode_video"


def _auth(stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.client.token()}"}


def airflow_trigger(stack, body: Any) -> requests.Response:
    """Airflow's own endpoint, retried while the embedded stack's SQLite is locked for a moment (a 5xx)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    for _ in range(4):
        response = requests.post(f"{stack.airflow.base_url}/api/v2/dags/{DAG}/dagRuns", data=raw, timeout=120,
                                 headers={**_auth(stack), "Content-Type": "application/json"})
        if response.status_code < 500:
            return response
        time.sleep(2)
    return response


def checked_trigger(stack, conf: dict[str, Any]) -> requests.Response:
    return requests.post(f"{stack.airflow.base_url}/vodflow/api/videos", json=conf, headers=_auth(stack), timeout=120)


def no_such_run(stack, run_id: str) -> bool:
    return requests.get(f"{stack.airflow.base_url}/api/v2/dags/{DAG}/dagRuns/{run_id}", headers=_auth(stack),
                        timeout=60).status_code == 404


def snapshot(stack, video_id: str) -> dict[str, Any]:
    objects = {key: stack.storage.client.get_object(Bucket="vodflow", Key=key)["Body"].read()
               for key in stack.storage.list_keys(layout.video_prefix(video_id))}
    return {"video": stack.catalog.get_video(video_id), "versions": stack.catalog.get_versions(video_id),
            "objects": objects}


def test_the_api_docs_need_a_login(embedded_stack):
    base = f"{embedded_stack.airflow.base_url}/vodflow"
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert requests.get(base + path, timeout=30).status_code == 401, path
        forged = requests.get(base + path, headers={"Authorization": "Bearer forged"}, timeout=30).status_code
        assert forged in (401, 403), path
        assert requests.get(base + path, headers=_auth(embedded_stack), timeout=30).status_code == 200, path
    schema = requests.get(f"{base}/openapi.json", headers=_auth(embedded_stack), timeout=30).json()
    assert "/api/videos/{video_id}/retry" in schema["paths"] and {"url": "/vodflow"} in schema["servers"]
    page = requests.get(f"{base}/docs", headers=_auth(embedded_stack), timeout=30).text
    assert "/vodflow/openapi.json" in page


@pytest.mark.parametrize("callback", ["http://127.0.0.1:9/hook", "http://169.254.169.254/latest"])
def test_airflows_trigger_refuses_a_callback_to_a_non_public_address(embedded_stack, callback):
    run_id = f"ssrf__{uuid.uuid4().hex[:8]}"
    conf = {"source": "s3://vodflow/uploads/x.mp4", "callback_url": callback}
    response = airflow_trigger(embedded_stack, {"logical_date": None, "dag_run_id": run_id, "conf": conf})
    assert response.status_code == 400 and response.json()["detail"].startswith("callback_url"), response.text
    assert checked_trigger(embedded_stack, conf).json()["detail"] == response.json()["detail"]  # the same answer
    assert no_such_run(embedded_stack, run_id)


def test_airflows_trigger_checks_a_conf_only_for_a_caller_allowed_to_trigger(embedded_stack):
    """The guard answered an anonymous caller "host 'localhost' resolves to 127.0.0.1" (400) before Airflow's
    auth: now Airflow answers it 401, and only an authenticated caller gets the guard's 400. (This stack
    allowlists localhost for its webhook receiver, so the loopback address is named directly.)"""
    run_id = f"anon__{uuid.uuid4().hex[:8]}"
    conf = {"source": "s3://vodflow/uploads/x.mp4", "callback_url": "http://127.0.0.1:9/hook"}
    body = {"logical_date": None, "dag_run_id": run_id, "conf": conf}
    url = f"{embedded_stack.airflow.base_url}/api/v2/dags/{DAG}/dagRuns"
    anonymous = requests.post(url, json=body, timeout=120)
    assert anonymous.status_code == 401 and "resolves" not in anonymous.text, anonymous.text
    authenticated = airflow_trigger(embedded_stack, body)
    assert authenticated.status_code == 400 and authenticated.json()["detail"].startswith("callback_url"), (
        authenticated.text)
    assert no_such_run(embedded_stack, run_id)


def test_airflows_trigger_refuses_a_body_over_1_mib(embedded_stack):
    """Before, such a body skipped the unknown-key check: here its conf has an unknown key and a bad callback."""
    run_id = f"big__{uuid.uuid4().hex[:8]}"
    conf = {"source": "s3://vodflow/uploads/x.mp4", "ladderr": "x", "callback_url": "http://127.0.0.1:9/hook"}
    body = {"logical_date": None, "dag_run_id": run_id, "conf": conf, "note": "n" * (1 << 20)}
    response = airflow_trigger(embedded_stack, body)
    assert response.status_code == 413, response.text[:300]
    assert no_such_run(embedded_stack, run_id)


def test_no_trigger_path_replaces_another_videos_content(embedded_stack, media):
    stack = embedded_stack
    mine, theirs = (f"uploads/guard-{uuid.uuid4().hex[:8]}/{name}.mp4" for name in ("mine", "theirs"))
    stack.storage.client.upload_file(str(media["small"]), "vodflow", mine)
    stack.storage.client.upload_file(str(media["no_audio"]), "vodflow", theirs)
    video_id = f"guard-{uuid.uuid4().hex[:8]}"
    first = stack.client.trigger(DAG, {"source": f"s3://vodflow/{mine}", "video_id": video_id})
    assert stack.client.wait_for_run(DAG, first, timeout=300)["state"] == "success"
    before = snapshot(stack, video_id)
    assert before["video"]["status"] == "ready" and before["objects"]

    takeover = {"source": f"s3://vodflow/{theirs}", "video_id": video_id}
    # The checked trigger and Airflow's own endpoint refuse it before a run exists.
    refused = checked_trigger(stack, takeover)
    assert refused.status_code == 400 and refused.json()["detail"].startswith("video_id"), refused.text
    run_id = f"takeover__{uuid.uuid4().hex[:8]}"
    refused = airflow_trigger(stack, {"logical_date": None, "dag_run_id": run_id, "conf": takeover})
    assert refused.status_code == 400 and refused.json()["detail"].startswith("video_id"), refused.text
    assert no_such_run(stack, run_id)
    # Past both (the CLI writes the run into the database itself): the run fails at register, bad input, no retry.
    cli_run = f"manual__takeover_{uuid.uuid4().hex[:8]}"
    stack.airflow.run_cli("dags", "trigger", DAG, "--run-id", cli_run, "--conf", json.dumps(takeover))
    run = stack.client.wait_for_run(DAG, cli_run, timeout=300)
    prepare = next(t for t in stack.client.task_instances(DAG, cli_run) if t["task_id"] == "prepare")
    assert run["state"] == "failed" and (prepare["state"], prepare["try_number"]) == ("failed", 1)
    logs = "\n".join(p.read_text(errors="replace") for p in (stack.state_dir / "logs").rglob("*.log")
                     if f"run_id={cli_run}" in str(p))
    assert errors.INVALID_REQUEST in logs and "made from another source" in logs
    assert snapshot(stack, video_id) == before  # the video's row, versions and every published byte

    # The same source again (a re-run) is no takeover: accepted, and it builds version 2.
    again = checked_trigger(stack, {"source": f"s3://vodflow/{mine}", "video_id": video_id})
    assert again.status_code == 202, again.text
    assert stack.client.wait_for_run(DAG, again.json()["dag_run_id"], timeout=300)["state"] == "success"
    video = stack.catalog.get_video(video_id)
    assert (video["status"], video["current_version"], video["source_uri"]) == ("ready", 2, f"s3://vodflow/{mine}")


def test_a_checked_trigger_that_airflow_refuses_is_started_by_the_watcher(embedded_stack, media):
    """Airflow cannot create the run this once (its metadata database is locked by another writer for longer than
    its 30 s busy timeout, as can happen on SQLite): the app gets a 503 naming the run, and the upload watcher starts
    that run on its next poll — once, with the app's conf (title, ladder) — instead of skipping the upload for ever.
    The object is outside the watched prefix, so only the handed-over claim can start it."""
    stack = embedded_stack
    key = f"uploads/refused-{uuid.uuid4().hex[:8]}/clip.mp4"
    stack.storage.client.upload_file(str(media["small"]), "vodflow", key)
    source = f"s3://vodflow/{key}"
    with metadata_locked(stack.state_dir):
        refused = checked_trigger(stack, {"source": source, "title": "Refused once ✓", "ladder": ["240p"]})
    answered = time.monotonic()
    assert refused.status_code == 503 and "upload watcher will start" in refused.json()["detail"], refused.text
    run_id = re.search(r"as run (app__\S+)", refused.json()["detail"]).group(1)
    deadline = time.monotonic() + 120
    while no_such_run(stack, run_id):  # the watcher's next poll starts it
        assert time.monotonic() < deadline, f"the watcher never started {run_id}"
        time.sleep(1)
    print(f"\nthe watcher started {run_id} {time.monotonic() - answered:.1f} s after the 503")
    assert stack.client.wait_for_run(DAG, run_id, timeout=300)["state"] == "success"
    video_id = layout.derive_video_id("vodflow", key, stack.storage.head(layout.parse_source_uri(source)).etag)
    video = stack.catalog.get_video(video_id)
    assert (video["status"], video["current_version"], video["dag_run_id"]) == ("ready", 1, run_id)
    # The run the app asked for, not just its object: its title and ladder.
    assert video["title"] == "Refused once ✓"
    assert [r["name"] for r in stack.catalog.get_renditions(video_id, 1)] == ["240p"]
    time.sleep(5)  # a few more polls: nothing else starts it
    found = requests.get(f"{stack.airflow.base_url}/api/v2/dags/{DAG}/dagRuns", headers=_auth(stack), timeout=60,
                         params={"limit": 100, "order_by": "-run_after"}).json()["dag_runs"]
    assert [(r["dag_run_id"], r["conf"]) for r in found if (r["conf"] or {}).get("source") == source] == [
        (run_id, {"source": source, "title": "Refused once ✓", "ladder": ["240p"], "video_id": video_id})]


def test_airflows_trigger_is_rate_limited_per_user_before_any_run(embedded_stack):
    """The ``app`` user (role User) through the running api-server: each trigger by a caller allowed to trigger is
    counted (``rate_triggers_per_minute``, 30 by default), Airflow's own answer carries the RateLimit fields, and the
    31st in a minute is 429 with Retry-After on Airflow's endpoint and on the checked trigger, before any run."""
    token = embedded_stack.airflow.client("app").token()
    url = f"{embedded_stack.airflow.base_url}/api/v2/dags/{DAG}/dagRuns"
    headers = {"Authorization": f"Bearer {token}"}
    good = {"source": "s3://vodflow/uploads/x.mp4"}
    if 60 - time.time() % 60 < 20:  # the 31 requests share one minute's window
        time.sleep(60 - time.time() % 60 + 0.2)
    run_ids = [f"limited__{uuid.uuid4().hex[:8]}" for _ in range(32)]
    # Past the guard (counted), refused by Airflow itself for the unknown top-level field: no run, and its 422
    # carries the fields.
    airflows = requests.post(url, json={"logical_date": None, "dag_run_id": run_ids[0], "conf": good, "bogus": 1},
                             headers=headers, timeout=120)
    assert airflows.status_code == 422, airflows.text
    assert (airflows.headers["RateLimit-Limit"], airflows.headers["RateLimit-Remaining"]) == ("30", "29")
    remaining = []
    for run_id in run_ids[1:30]:
        refused = requests.post(url, json={"logical_date": None, "dag_run_id": run_id, "conf": {**good, "x": 1}},
                                headers=headers, timeout=120)
        assert refused.status_code == 400, refused.text  # the conf guard's answer, counted as well
        remaining.append(int(refused.headers["RateLimit-Remaining"]))
    assert remaining == list(range(28, -1, -1))
    over = requests.post(url, json={"logical_date": None, "dag_run_id": run_ids[30], "conf": good}, headers=headers,
                         timeout=120)
    assert over.status_code == 429 and over.json()["limit"] == "rate_triggers_per_minute", over.text
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    checked = requests.post(f"{embedded_stack.airflow.base_url}/vodflow/api/videos", json=good, headers=headers,
                            timeout=120)
    assert checked.status_code == 429, checked.text
    assert all(no_such_run(embedded_stack, run_id) for run_id in run_ids[:31])
    print(f"Airflow's trigger as 'app': 422 then 29 × 400 (remaining 29 → 0), 31st → 429 "
          f"(Retry-After {over.headers['Retry-After']} s), checked trigger → 429, no run")
