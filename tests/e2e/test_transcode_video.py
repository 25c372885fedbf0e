"""transcode_video through the real Airflow stack: REST trigger, scheduler, LocalExecutor, mapped tasks."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.e2e.pages import page_findings
from vodflow import errors, layout
from vodflow.devtools.client import ApiError
from vodflow.devtools.conformance import check_tree

pytestmark = pytest.mark.e2e
DAG = "transcode_video"


def upload(stack, path: Path, name: str) -> str:
    key = f"uploads/e2e-{uuid.uuid4().hex[:8]}/{name}"
    stack.storage.client.upload_file(str(path), "vodflow", key)
    return f"s3://vodflow/{key}"


def video_of(stack, run_id: str) -> dict:
    import sqlalchemy as sa

    from vodflow.catalog import videos

    with stack.catalog.engine.connect() as conn:
        video_id = conn.execute(sa.select(videos.c.id).where(videos.c.dag_run_id == run_id)).scalar()
    return stack.catalog.get_video(video_id)


@pytest.mark.parametrize("conf,word", [
    ({"source": "http://example.com/a.mp4"}, "source"),
    ({"source": "s3://vodflow/uploads/../x.mp4"}, "source"),
    ({"source": "s3://vodflow/uploads/a.mp4", "ladder": "enormous"}, "ladder"),
    ({"title": "no source"}, "source"),
    ({"source": "s3://vodflow/uploads/" + "x" * 2048}, "source"),
    ({"source": "s3://vodflow/uploads/a\x01\x1bb.mp4"}, "source"),
    ({"source": "s3://vodflow/uploads/a.mp4", "ladderr": ["720p"]}, "ladderr"),  # unknown: plugin middleware
    ({"source": "s3://vodflow/uploads/a.mp4", "outputs": ["mp4"]}, "outputs"),  # no streaming output
    ({"source": "s3://vodflow/uploads/a.mp4", "outputs": ["hls", "flv"]}, "outputs"),
])
def test_bad_conf_is_refused_at_trigger_time(embedded_stack, conf, word):
    for _ in range(4):  # the embedded stack's SQLite can be locked by the dag-processor for a moment (a 500)
        with pytest.raises(ApiError) as caught:
            embedded_stack.client.trigger(DAG, conf)
        if caught.value.status_code < 500:
            break
        time.sleep(2)
    assert 400 <= caught.value.status_code < 500
    assert word in str(caught.value.detail)


def test_a_good_and_a_corrupt_upload(embedded_stack, media, tmp_path):
    stack = embedded_stack
    good = stack.client.trigger(DAG, {"source": upload(stack, media["landscape"], "holiday.mp4")})
    bad = stack.client.trigger(DAG, {"source": upload(stack, media.bad("truncated.mp4"), "broken.mp4")})
    good_run = stack.client.wait_for_run(DAG, good, timeout=600)
    bad_run = stack.client.wait_for_run(DAG, bad, timeout=600)

    # The good one: ready, one complete version in the bucket, conformant, every rendition from one decode.
    assert good_run["state"] == "success"
    video = video_of(stack, good)
    assert (video["status"], video["current_version"], video["title"]) == ("ready", 1, "holiday")
    tasks = stack.client.task_instances(DAG, good)
    transcodes = [t for t in tasks if t["task_id"] == "transcode"]
    assert [t["rendered_map_index"] for t in transcodes] == ["1080p 720p 480p 360p"]
    assert sorted(t["task_id"] for t in tasks) == ["prepare", "publish", "transcode"]
    assert {t["queue"] for t in transcodes} == {"transcode"}
    assert all(t["state"] == "success" and t["try_number"] == 1 for t in tasks)
    prefix = layout.version_prefix(video["id"], 1)
    stack.storage.download_tree(prefix, str(tmp_path))
    report = check_tree(tmp_path / "hls", expected_duration=video["duration"], expect_audio=True)
    assert report.ok, report.summary()
    assert (tmp_path / "thumbs" / "poster.jpg").stat().st_size > 1000
    renditions = stack.catalog.get_renditions(video["id"], 1)
    assert [(r["name"], r["status"], r["progress"]) for r in renditions] == [
        ("1080p", "done", 100), ("720p", "done", 100), ("480p", "done", 100), ("360p", "done", 100)]
    assert all(r["bandwidth"] >= r["average_bandwidth"] > 0 for r in renditions)

    # The corrupt one: failed with its reason, nothing published, no retry spent, no scratch left.
    assert bad_run["state"] == "failed"
    broken = video_of(stack, bad)
    assert (broken["status"], broken["error_code"]) == ("failed", errors.UNREADABLE)
    assert "truncated" in broken["error_message"]
    assert broken["current_version"] is None
    assert stack.storage.list_keys(layout.video_prefix(broken["id"])) == []
    states = {t["task_id"]: (t["state"], t["try_number"]) for t in stack.client.task_instances(DAG, bad)}
    assert states["prepare"] == ("failed", 1), states
    assert states["transcode"][0] == "upstream_failed" and states["publish"][0] == "upstream_failed"
    assert not any((stack.state_dir / "scratch" / broken["id"]).rglob("*"))


def test_a_per_title_ladder_spends_fewer_bits_on_easy_content(embedded_stack, tmp_path):
    """conf `adaptive: true` on a lecture-like source: the VMAF probe runs in the transcode task (still three
    tasks), lowers the rungs below the fixed ladder, says why in the history, records each rendition's measured
    VMAF, and the published tree is still conformant (declared = measured)."""
    from vodflow.devtools.samples import make_lecture_sample
    from vodflow.media.encode.ladder import plan_ladder

    stack = embedded_stack
    source = Path(make_lecture_sample(str(tmp_path / "lecture.mp4"), 1280, 720, 8.0))
    run_id = stack.client.trigger(DAG, {"source": upload(stack, source, "lecture.mp4"), "adaptive": True})
    assert stack.client.wait_for_run(DAG, run_id, timeout=600)["state"] == "success"
    tasks = stack.client.task_instances(DAG, run_id)
    assert sorted(t["task_id"] for t in tasks) == ["prepare", "publish", "transcode"]
    assert [t["rendered_map_index"] for t in tasks if t["task_id"] == "transcode"] == ["per-title ladder"]
    video = video_of(stack, run_id)
    assert (video["status"], video["current_version"]) == ("ready", 1)
    fixed = {r.name: r.video_kbps for r in plan_ladder(1280, 720, "30", True).renditions}
    renditions = stack.catalog.get_renditions(video["id"], 1)
    assert {r["name"] for r in renditions} <= set(fixed) and renditions[-1]["name"] == "360p"
    assert sum(r["video_kbps"] for r in renditions) < 0.8 * sum(fixed.values()), renditions
    assert all(r["vmaf"] is not None and 0 < r["vmaf_p5"] <= r["vmaf"] <= 100 for r in renditions), renditions
    decided = [e for e in stack.catalog.get_events(video["id"]) if e["kind"] == "ladder_decided"]
    assert len(decided) == 1 and decided[0]["detail"]["probe_cpu_seconds"] > 0
    assert [r["name"] for r in decided[0]["detail"]["rungs"]] == list(fixed)
    assert any(e["kind"] == "quality" for e in stack.catalog.get_events(video["id"]))
    # What the operator sees: the API's renditions and the page's VMAF column say what the catalog holds.
    shown = requests.get(f"{stack.airflow.base_url}/vodflow/api/videos/{video['id']}", timeout=30,
                         headers={"Authorization": f"Bearer {stack.client.token()}"}).json()["renditions"]
    assert [(r["name"], r["vmaf"], r["vmaf_p5"]) for r in shown] == [
        (r["name"], r["vmaf"], r["vmaf_p5"]) for r in renditions]
    page = page_findings(stack, "quality.mjs", video["id"])
    assert page["header"]["title"].startswith("VMAF against the source"), page
    assert page["renditions"] == [{"name": r["name"], "vmaf": f"{r['vmaf']:.1f} ({r['vmaf_p5']:.1f})"}
                                  for r in renditions], page
    stack.storage.download_tree(layout.version_prefix(video["id"], 1), str(tmp_path / "out"))
    report = check_tree(tmp_path / "out" / "hls", expected_duration=video["duration"], expect_audio=True)
    assert report.ok, report.summary()
    fixed_total = sum(r.video_kbps + r.audio_kbps for r in plan_ladder(1280, 720, "30", True).renditions)
    assert sum(r["average_bandwidth"] for r in renditions) < 0.9 * 1000 * fixed_total  # measured, with audio


def test_a_long_video_is_encoded_in_chunks_on_the_transcode_queue(embedded_stack, tmp_path):
    """conf chunk_seconds on a 31 s source: mapped tasks named by chunk (and one for the audio) on the transcode
    queue, one publish (which joins them) after all of them, a conformant published tree with the pictures
    every chunk made, and no intermediate pieces left."""
    from vodflow.devtools.samples import SampleSpec, make_sample

    stack = embedded_stack
    source = Path(make_sample(str(tmp_path / "long.mp4"), SampleSpec(854, 480, 31.0, "30", audio=True)))
    run_id = stack.client.trigger(DAG, {"source": upload(stack, source, "long.mp4"), "chunk_seconds": 12})
    assert stack.client.wait_for_run(DAG, run_id, timeout=600)["state"] == "success"
    tasks = stack.client.task_instances(DAG, run_id)
    work = [t for t in tasks if t["task_id"] == "transcode"]
    assert sorted(t["rendered_map_index"] for t in work) == ["audio", "chunk 00", "chunk 01", "chunk 02"]
    assert {(t["queue"], t["state"]) for t in work} == {("transcode", "success")}
    joins = [t for t in tasks if t["task_id"] == "publish"]
    assert len(joins) == 1 and joins[0]["try_number"] == 1
    assert joins[0]["start_date"] >= max(t["end_date"] for t in work)  # the join ran once, after every chunk
    video = video_of(stack, run_id)
    assert (video["status"], video["current_version"]) == ("ready", 1)
    assert not stack.storage.list_keys(layout.chunks_prefix(video["id"], 1))
    stack.storage.download_tree(layout.version_prefix(video["id"], 1), str(tmp_path / "out"))
    report = check_tree(tmp_path / "out" / "hls", expected_duration=video["duration"], expect_audio=True)
    assert report.ok, report.summary()
    assert sorted(p.name for p in (tmp_path / "out" / "thumbs").iterdir()) == [
        *(f"{i:03d}.jpg" for i in range(1, 11)), "poster.jpg"]
