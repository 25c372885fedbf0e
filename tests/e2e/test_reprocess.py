"""Manual reprocess_videos runs through the real stack, as docs/uploads-and-triggers.md#reprocessing-and-retry
describes them: without a logical date (the Trigger button) mode `repair` sweeps every retryable video and `all`
is refused; with a logical date the run repairs its data interval. Every re-run starts from the video's stored
request."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from vodflow import errors
from vodflow.catalog import ACTIVE_RUN_STALE_AFTER, ACTIVE_STATUSES, FAILED, READY, videos
from vodflow.errors import BAD_INPUT_CODES
from vodflow.media.encode.ladder import LADDER_VERSION
from vodflow.request import rerun_request

pytestmark = pytest.mark.e2e
DAG, REPROCESS = "transcode_video", "reprocess_videos"


def started_by(stack, reprocess_run: str) -> list[dict[str, Any]]:
    """The transcode_video runs a reprocess run started (ids ``reprocess__<video>__<its run id>``)."""
    found = stack.client.request("GET", f"/api/v2/dags/{DAG}/dagRuns",
                                 params={"run_id_pattern": reprocess_run, "limit": 100})["dag_runs"]
    return [r for r in found if r["dag_run_id"].startswith("reprocess__")
            and r["dag_run_id"].endswith(f"__{reprocess_run}")]


def expected_repairs(stack, start: datetime | None = None, end: datetime | None = None) -> set[str]:
    """What the docs promise a manual repair selects, worked out independently from the whole catalog:
    failed but not bad input, or active and silent past the stale limit; in [start, end) when given; and
    published videos on an older ladder (none in this stack)."""
    stale = datetime.now(UTC) - ACTIVE_RUN_STALE_AFTER
    wanted = set()
    for video in stack.catalog.list_videos(limit=10_000)[0]:
        uploaded = video["source_uploaded_at"] or video["created_at"]
        if start is not None and not start <= uploaded < end:
            continue
        progress = [r["updated_at"] for r in video["renditions"]]
        if ((video["status"] == FAILED and video["error_code"] not in BAD_INPUT_CODES)
                or (video["status"] in ACTIVE_STATUSES and max([video["updated_at"], *progress]) < stale)
                or (video["status"] == READY and video["ladder_version"] < LADDER_VERSION)):
            wanted.add(video["id"])
    return wanted


def prepare(stack, media, name: str, outcome: str, uploaded: datetime, request: dict[str, Any] | None = None,
            code: str | None = None) -> str:
    """A catalog video as an earlier run left it (its source really in S3): failed with ``code``, ready, or
    stuck (its run died: registered, then silent for longer than the stale limit)."""
    video_id = f"rep-{name}-{uuid.uuid4().hex[:6]}"
    key = f"uploads/reprocess-{uuid.uuid4().hex[:8]}/{name}.mp4"
    stack.storage.client.upload_file(str(media["small"]), "vodflow", key)
    run_id = f"upload__{video_id}"
    request = {"source": f"s3://vodflow/{key}", "title": name, **(request or {}), "video_id": video_id}
    version = stack.catalog.register(video_id=video_id, source_uri=request["source"], etag="e", size=1,
                                     title=request.get("title"), run_id=run_id, ladder_version=LADDER_VERSION,
                                     uploaded_at=uploaded, request=request)
    if outcome == "failed":
        stack.catalog.fail(video_id=video_id, run_id=run_id, version=version, code=code, message="test")
    elif outcome == "ready":
        stack.catalog.publish(video_id=video_id, run_id=run_id, version=version, poster_uri=None,
                              master_uri=f"s3://vodflow/videos/{video_id}/v1/hls/master.m3u8",
                              ladder_version=LADDER_VERSION)
    elif outcome == "stuck":
        with stack.catalog.engine.begin() as conn:
            conn.execute(videos.update().where(videos.c.id == video_id).values(
                updated_at=datetime.now(UTC) - ACTIVE_RUN_STALE_AFTER - timedelta(minutes=5)))
    return video_id


def trigger_reprocess(stack, conf: dict[str, Any], logical_date: str | None = None) -> dict[str, Any]:
    run = stack.client.request("POST", f"/api/v2/dags/{REPROCESS}/dagRuns",
                               json={"logical_date": logical_date, "conf": conf})
    return stack.client.wait_for_run(REPROCESS, run["dag_run_id"], timeout=300)


def check_rebuilt(stack, runs: list[dict[str, Any]], before: dict[str, dict[str, Any]], rungs: list[str]) -> None:
    for run in runs:
        finished = stack.client.wait_for_run(DAG, run["dag_run_id"], timeout=300)
        video_id = run["conf"]["video_id"]
        assert finished["state"] == "success", video_id
        video = stack.catalog.get_video(video_id)
        assert (video["status"], video["current_version"], video["error_code"]) == ("ready", 2, None)
        assert [r["name"] for r in stack.catalog.get_renditions(video_id, 2)] == rungs
        assert video["title"] == before[video_id]["title"]


def test_manual_runs_repair_what_broke_and_never_re_encode_a_good_video(embedded_stack, media):
    stack = embedded_stack
    long_ago = datetime(2025, 3, 1, 12, tzinfo=UTC)
    failed = prepare(stack, media, "internal", "failed", long_ago, {"ladder": ["240p"], "title": "Kept title"},
                     code=errors.INTERNAL_ERROR)
    stuck = prepare(stack, media, "stuck", "stuck", long_ago, {"ladder": ["240p"], "chunk_seconds": 0})
    bad = prepare(stack, media, "bad", "failed", long_ago, code=errors.UNREADABLE)
    good = prepare(stack, media, "good", "ready", long_ago)
    wanted = expected_repairs(stack)
    assert {failed, stuck} <= wanted and not {bad, good} & wanted
    before = {v: stack.catalog.get_video(v) for v in wanted}

    # The Trigger button's default: no logical date, so no data interval; `repair` sweeps everything retryable.
    sweep = trigger_reprocess(stack, {})
    assert sweep["state"] == "success" and sweep["logical_date"] is None and sweep["data_interval_start"] is None
    runs = started_by(stack, sweep["dag_run_id"])
    assert {r["conf"]["video_id"] for r in runs} == wanted
    for run in runs:
        assert run["conf"] == rerun_request(before[run["conf"]["video_id"]])  # the stored request, whole
    assert next(r for r in runs if r["conf"]["video_id"] == failed)["conf"] == {
        "source": before[failed]["source_uri"], "video_id": failed, "ladder": ["240p"], "title": "Kept title"}
    check_rebuilt(stack, [r for r in runs if r["conf"]["video_id"] in (failed, stuck)], before, ["240p"])
    assert [e for e in stack.catalog.get_events(stuck) if e["kind"] == "takeover"]  # the dead run's video
    assert stack.catalog.get_video(good)["latest_version"] == 1
    assert stack.catalog.get_video(bad)["latest_version"] == 1

    # `all` without a range would re-encode the whole library: refused, and nothing started.
    refused = trigger_reprocess(stack, {"mode": "all"})
    assert refused["state"] == "failed"
    states = {t["task_id"]: t["state"] for t in stack.client.task_instances(REPROCESS, refused["dag_run_id"])}
    assert states["select"] == "failed" and states.get("reprocess") in (None, "upstream_failed"), states
    assert started_by(stack, refused["dag_run_id"]) == []

    # With a logical date (now): the run's data interval is yesterday (UTC), and it repairs just that.
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday = prepare(stack, media, "yesterday", "failed", today - timedelta(hours=12),
                        {"ladder": ["240p"]}, code=errors.INTERNAL_ERROR)
    older = prepare(stack, media, "older", "failed", today - timedelta(days=3), code=errors.INTERNAL_ERROR)
    wanted = expected_repairs(stack, today - timedelta(days=1), today)
    assert yesterday in wanted and older not in wanted
    before = {v: stack.catalog.get_video(v) for v in wanted}
    dated = trigger_reprocess(stack, {}, logical_date=datetime.now(UTC).isoformat())
    assert dated["state"] == "success"
    interval = tuple(datetime.fromisoformat(dated[k]) for k in ("data_interval_start", "data_interval_end"))
    assert interval == (today - timedelta(days=1), today)
    runs = started_by(stack, dated["dag_run_id"])
    assert {r["conf"]["video_id"] for r in runs} == wanted
    check_rebuilt(stack, [r for r in runs if r["conf"]["video_id"] == yesterday], before, ["240p"])
    assert stack.catalog.get_video(older)["latest_version"] == 1
