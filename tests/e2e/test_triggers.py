"""The three ways runs start, through the real stack: a presigned upload picked up by watch_uploads (exactly
once, across a scheduler and triggerer restart), and a backfill of reprocess_videos over a date range."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from tests.e2e.conftest import WATCH_PREFIX
from vodflow.catalog import videos
from vodflow.devtools.samples import SampleSpec, make_sample

pytestmark = pytest.mark.e2e
DAG = "transcode_video"


def wait_until(check: Callable[[], Any], timeout: float, what: str, poll: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"still waiting for {what} after {timeout:.0f} s")
        time.sleep(poll)


def runs(stack, dag_id: str, prefix: str = "", ending: tuple[str, ...] = ("",)) -> list[dict[str, Any]]:
    """The DAG's runs whose id starts with ``prefix`` and ends with one of ``ending`` (other tests' runs too)."""
    found = stack.client.request("GET", f"/api/v2/dags/{dag_id}/dagRuns",
                                 params={"limit": 100, "run_id_prefix_pattern": prefix or None})["dag_runs"]
    return [r for r in found if r["dag_run_id"].startswith(prefix) and r["dag_run_id"].endswith(ending)]


def all_finished(stack, dag_id: str, prefix: str, count: int,
                 ending: tuple[str, ...] = ("",)) -> list[dict[str, Any]] | None:
    found = runs(stack, dag_id, prefix, ending)
    if len(found) >= count and all(r["state"] in ("success", "failed") for r in found):
        return found
    return None


def restart(stack, *names: str) -> None:
    for name in names:
        stack.airflow.restart(name)


def backfill_create(stack, *args: str) -> None:
    """`airflow backfill create`, as an operator types it. On SQLite its one transaction can meet the
    scheduler's write lock ("database is locked", not waited for); it is all-or-nothing, so try again."""
    for attempt in range(8):  # 5 tries 2 s apart all met the lock once, on a machine running three test sessions
        try:
            stack.airflow.run_cli("backfill", "create", *args)
            return
        except RuntimeError as exc:
            if "database is locked" not in str(exc) or attempt == 7:
                raise
            time.sleep(2 + attempt)


def test_upload_endpoint_needs_a_user_allowed_to_trigger(embedded_stack):
    url = f"{embedded_stack.airflow.base_url}/vodflow/api/uploads"
    body = {"filename": "a.mp4", "content_type": "video/mp4", "size": 1000}
    assert requests.post(url, json=body, timeout=10).status_code == 401
    forged = requests.post(url, json=body, headers={"Authorization": "Bearer forged"}, timeout=10)
    assert forged.status_code in (401, 403)
    viewer = embedded_stack.airflow.client("viewer")
    response = requests.post(url, json=body, headers={"Authorization": f"Bearer {viewer.token()}"}, timeout=10)
    assert response.status_code == 403
    admin = {"Authorization": f"Bearer {embedded_stack.client.token()}"}
    refused = requests.post(url, json={**body, "content_type": "text/html"}, headers=admin, timeout=10)
    assert refused.status_code == 422 and "content_type" in refused.text
    granted = requests.post(url, json=body, headers=admin, timeout=10)
    assert granted.status_code == 201, granted.text
    grant = granted.json()
    assert grant["key"].startswith("uploads/") and grant["key"].endswith("/a.mp4")
    assert grant["method"] == "PUT" and grant["headers"] == {"Content-Type": "video/mp4"}
    assert grant["source"] == f"s3://vodflow/{grant['key']}" and grant["expires_at"].endswith("Z")


def test_each_new_object_starts_exactly_one_run(embedded_stack, media, tmp_path):
    stack = embedded_stack
    folder = f"{WATCH_PREFIX}{uuid.uuid4().hex[:8]}/"
    clip = media["small"]
    # One arrives the way apps upload: through a presigned URL from the plugin (its key is ours to choose
    # only inside the watched prefix here, so the test presigns that key with the same storage call).
    keys = [f"{folder}first.mp4", f"{folder}second.mp4", f"{folder}third.mp4"]
    put_url = stack.storage.presigned_put(keys[0], "video/mp4", clip.stat().st_size, 600)
    assert requests.put(put_url, data=clip.read_bytes(), headers={"Content-Type": "video/mp4"},
                        timeout=30).status_code == 200
    for key in keys[1:]:
        stack.storage.client.upload_file(str(clip), "vodflow", key)

    started = wait_until(lambda: all_finished(stack, DAG, "upload__", 3), 300, "3 transcode runs")
    assert len(started) == 3 and {r["state"] for r in started} == {"success"}
    assert sorted(r["conf"]["source"] for r in started) == sorted(f"s3://vodflow/{k}" for k in keys)
    for run in started:
        video = stack.catalog.get_video(run["conf"]["video_id"])
        assert video["status"] == "ready" and video["dag_run_id"] == run["dag_run_id"]
        assert video["source_uploaded_at"] is not None

    # Restart the scheduler and the triggerer: the watcher resumes from the catalog, not from memory.
    restart(stack, "scheduler", "triggerer")
    # The same bytes again under the same key (same ETag): not new. New bytes under another key: new.
    stack.storage.client.upload_file(str(clip), "vodflow", keys[1])
    changed = tmp_path / "changed.mp4"
    make_sample(str(changed), SampleSpec(320, 180, 2.0, "25", audio=True))
    stack.storage.client.upload_file(str(changed), "vodflow", keys[2])

    after = wait_until(lambda: all_finished(stack, DAG, "upload__", 4), 300, "the changed object's run")
    assert len(after) == 4, [r["dag_run_id"] for r in after]
    [new] = [r for r in after if r["dag_run_id"] not in {s["dag_run_id"] for s in started}]
    assert new["conf"]["source"] == f"s3://vodflow/{keys[2]}" and new["state"] == "success"
    # Give the watcher time to (wrongly) react to anything else, then check nothing else started.
    time.sleep(8)
    assert len(runs(stack, DAG, "upload__")) == 4
    watcher_runs = runs(stack, "watch_uploads")
    assert not [r for r in watcher_runs if r["state"] == "failed"], watcher_runs


def test_a_quiet_watcher_run_ends_cleanly_and_the_next_one_starts(embedded_stack):
    """A watcher run with nothing to do ends after watch_run_seconds as a success (sensor skipped), not a
    failure, and the continuous schedule starts the next one."""
    stack = embedded_stack
    quiet = wait_until(lambda: [r for r in runs(stack, "watch_uploads") if r["state"] == "success" and not any(
        t["state"] == "success" for t in stack.client.task_instances("watch_uploads", r["dag_run_id"])
        if t["task_id"] == "claim")], 120, "a quiet watcher run to end", poll=3)
    states = {t["task_id"]: t["state"] for t in stack.client.task_instances("watch_uploads", quiet[0]["dag_run_id"])}
    assert states["wait_for_uploads"] == "skipped" and states["mark_started"] == "skipped", states
    assert any(r["state"] in ("running", "queued") for r in runs(stack, "watch_uploads"))
    assert not [r for r in runs(stack, "watch_uploads") if r["state"] == "failed"]


def test_backfill_reprocesses_exactly_the_uploads_of_the_range(embedded_stack):
    stack = embedded_stack
    with stack.catalog.engine.connect() as conn:
        ready = conn.execute(sa.select(videos.c.id).where(
            videos.c.source_uri.like(f"s3://vodflow/{WATCH_PREFIX}%"), videos.c.status == "ready"
        ).order_by(videos.c.id)).scalars().all()
    assert len(ready) >= 4, "runs after test_each_new_object_starts_exactly_one_run"
    uploaded = {  # arrange: when each source was uploaded
        ready[0]: datetime(2026, 11, 1, 0, 0, tzinfo=UTC),  # first instant of the range
        ready[1]: datetime(2026, 11, 2, 23, 59, tzinfo=UTC),  # last minute of the range
        ready[2]: datetime(2026, 11, 3, 0, 0, tzinfo=UTC),  # just after it
        ready[3]: datetime(2026, 10, 31, 23, 59, tzinfo=UTC),  # just before it
    }
    with stack.catalog.engine.begin() as conn:
        for video_id, at in uploaded.items():
            conn.execute(videos.update().where(videos.c.id == video_id).values(source_uploaded_at=at))
    before = {v: stack.catalog.get_video(v)["current_version"] for v in uploaded}
    titles = {v: stack.catalog.get_video(v)["title"] for v in uploaded}

    # A backfill repairs by default; re-transcoding the range's good videos is asked for with mode "all".
    backfill_create(stack, "--dag-id", "reprocess_videos", "--from-date", "2026-11-01", "--to-date", "2026-11-02",
                    "--dag-run-conf", '{"mode": "all"}')
    backfill = wait_until(lambda: all_finished(stack, "reprocess_videos", "backfill__", 2), 300,
                          "the backfill's reprocess_videos runs")
    assert len(backfill) == 2 and {r["state"] for r in backfill} == {"success"}, backfill
    assert [r["conf"] for r in backfill] == [{"mode": "all"}] * 2
    started = tuple(f"__{r['dag_run_id']}" for r in backfill)  # reprocess__<video>__<backfill run id>
    reprocessed = wait_until(lambda: all_finished(stack, DAG, "reprocess__", 2, ending=started), 300,
                             "the reprocess runs")
    assert sorted(r["conf"]["video_id"] for r in reprocessed) == sorted(ready[:2])
    assert {r["state"] for r in reprocessed} == {"success"}
    for video_id in ready[:2]:
        video = stack.catalog.get_video(video_id)
        assert video["status"] == "ready" and video["current_version"] == before[video_id] + 1
        assert video["title"] == titles[video_id]
        published = [v["version"] for v in stack.catalog.get_versions(video_id) if v["status"] == "published"]
        assert published == [before[video_id], before[video_id] + 1]  # the old one kept for players on it
    for video_id in ready[2:4]:
        assert stack.catalog.get_video(video_id)["current_version"] == before[video_id]
