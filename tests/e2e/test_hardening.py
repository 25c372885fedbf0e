"""Hardening through the real stack: every kind of bad input refused cleanly, awkward but valid sources
transcoded correctly, the same video triggered twice at once, S3 unreachable for 30 s, a full scratch disk.

All inputs of the matrix are triggered at once, as uploads arrive in production, then checked one by one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from vodflow import errors, layout
from vodflow.devtools.conformance import check_tree
from vodflow.devtools.samples import SampleSpec, make_sample

pytestmark = pytest.mark.e2e
DAG = "transcode_video"


@dataclass(frozen=True)
class Case:
    name: str
    make: Any  # (media, directory) -> path
    code: str | None  # expected error code; None: must end ready
    failing_task: str = "prepare"  # register → probe → plan: probe refuses these


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args], check=True)  # noqa: S603


def sample(spec: SampleSpec):
    def make(media, folder: Path, name: str) -> Path:
        return Path(make_sample(str(folder / name), spec))
    return make


def bad(kind: str):
    return lambda media, folder, name: media.bad(kind)


def vfr(media, folder: Path, name: str) -> Path:
    path = folder / name  # frames dropped irregularly: timestamps 1/30 s apart or more, never regular
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30,noise=alls=6:allf=t", "-f", "lavfi",
            "-i", "sine=frequency=440:sample_rate=48000", "-t", "7",
            "-vf", r"select=not(mod(n\,7))+not(mod(n\,3))", "-fps_mode", "vfr", "-c:v", "libx264",
            "-preset", "ultrafast", "-c:a", "aac", str(path))
    return path


def rotated(media, folder: Path, name: str) -> Path:
    """As a phone records portrait: landscape pixels plus a display matrix saying 'rotate 90°'."""
    plain = make_sample(str(folder / f"plain-{name}"), SampleSpec(1280, 720, 4.0, "30"))
    path = folder / name
    _ffmpeg("-i", plain, "-c", "copy", "-metadata:s:v:0", "rotate=90", str(path))
    assert '"rotation": 90' in json.dumps(_ffprobe(path))
    return path


def too_long(media, folder: Path, name: str) -> Path:
    path = folder / name
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=10", "-t", "130", "-c:v", "libx264",
            "-preset", "ultrafast", str(path))
    return path


CASES = [
    Case("zero-byte", bad("empty.mp4"), errors.EMPTY_FILE),
    Case("truncated mp4", bad("truncated.mp4"), errors.UNREADABLE),
    Case("text named .mp4", bad("text.mp4"), errors.NOT_A_VIDEO),
    Case("jpeg named .mp4", bad("image.mp4"), errors.NOT_A_VIDEO),
    Case("audio only", bad("audio-only.m4a"), errors.NO_VIDEO_STREAM),
    Case("single frame", sample(SampleSpec(320, 240, 0.04, "25", audio=False, extra_output_args=("-frames:v", "1"))),
         errors.TOO_SHORT),
    Case("shorter than 1 s", sample(SampleSpec(320, 240, 0.5, "25")), errors.TOO_SHORT),
    Case("above the duration limit", too_long, errors.TOO_LARGE),
    Case("odd dimensions 1281x721", sample(SampleSpec(1281, 721, 4.0, "30", pix_fmt="yuv444p")), None),
    Case("phone rotation", rotated, None),
    Case("variable frame rate", vfr, None),
    Case("10-bit HDR (PQ, BT.2020)", sample(SampleSpec(1280, 720, 4.0, "30", pix_fmt="yuv420p10le", extra_output_args=(
        "-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc"))), None),
    # 50 pictures a second woven into 25 frames, top field first, as a camera records 1080i/720i: the fields of
    # a frame are 1/50 s apart, so moving edges comb (a progressive picture flagged interlaced would not).
    Case("interlaced", sample(SampleSpec(1280, 720, 4.0, "50", extra_output_args=(
        "-vf", "tinterlace=mode=interleave_top", "-flags", "+ilme+ildct", "-top", "1", "-field_order", "tt"))), None),
    Case("8K", sample(SampleSpec(7680, 4320, 1.5, "30", noise=0, audio=False)), None),
    Case("key like an ffmpeg option", sample(SampleSpec(320, 240, 2.0, "25")), None),
]


def _idet(paths: list[Path]) -> dict[str, int]:
    """What ffmpeg's idet filter sees in the pictures (not in the flags an encoder wrote, which libx264 sets to
    progressive whatever it is given): frames combed top field first, bottom field first, or progressive."""
    counts = dict.fromkeys(("TFF", "BFF", "Progressive", "Undetermined"), 0)
    for path in paths:
        stderr = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "info", "-i", str(path),  # noqa: S603
                                 "-map", "0:v:0", "-vf", "idet", "-f", "null", "-"],
                                capture_output=True, text=True, check=True).stderr
        line = next(line for line in stderr.splitlines() if "Multi frame detection:" in line)
        for kind, count in re.findall(r"(TFF|BFF|Progressive|Undetermined):\s*(\d+)", line):
            counts[kind] += int(count)
    return counts


def _combed(counts: dict[str, int]) -> float:
    """The share of the frames idet could classify that are interlaced (combed)."""
    decided = counts["TFF"] + counts["BFF"] + counts["Progressive"]
    return (counts["TFF"] + counts["BFF"]) / decided if decided else 0.0


def _ffprobe(path: Path) -> dict[str, Any]:
    out = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", str(path)],  # noqa: S603
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


@pytest.fixture(scope="module")
def matrix(embedded_stack, media, tmp_path_factory) -> dict[str, dict[str, Any]]:
    stack = embedded_stack
    folder = tmp_path_factory.mktemp("hardening")
    started: dict[str, dict[str, Any]] = {}
    paths = [case.make(media, folder, f"case{number}.mp4") for number, case in enumerate(CASES)]
    for number, (case, path) in enumerate(zip(CASES, paths, strict=True)):
        name = "-i /etc/passwd" if case.name == "key like an ffmpeg option" else f"case{number}.mp4"
        key = f"uploads/hardening-{uuid.uuid4().hex[:8]}/{name}"
        stack.storage.client.upload_file(str(path), "vodflow", key)
        video_id = f"hard-{number:02d}-{uuid.uuid4().hex[:6]}"
        # Our own run ids, so a trigger the SQLite-backed embedded API times out on can be sent again.
        run_id = stack.client.trigger(DAG, {"source": f"s3://vodflow/{key}", "video_id": video_id},
                                      run_id=f"hardening__{video_id}", attempts=4)
        started[case.name] = {"case": case, "run_id": run_id, "video_id": video_id, "path": path}
    for item in started.values():
        item["run"] = stack.client.wait_for_run(DAG, item["run_id"], timeout=900)
        item["video"] = stack.catalog.get_video(item["video_id"])
        item["tasks"] = {(t["task_id"], t["map_index"]): t for t in stack.client.task_instances(DAG, item["run_id"])}
    return started


@pytest.mark.parametrize("case", [c for c in CASES if c.code], ids=lambda c: c.name)
def test_bad_input_is_refused_cleanly(embedded_stack, matrix, case):
    item = matrix[case.name]
    video = item["video"]
    assert item["run"]["state"] == "failed"
    assert (video["status"], video["error_code"]) == ("failed", case.code), video["error_message"]
    assert len(video["error_message"]) > 20 and "Traceback" not in video["error_message"]
    failing = item["tasks"][(case.failing_task, -1)]
    assert (failing["state"], failing["try_number"]) == ("failed", 1)  # no retry spent
    assert video["current_version"] is None
    assert embedded_stack.storage.list_keys(layout.video_prefix(video["id"])) == []
    assert not any((embedded_stack.state_dir / "scratch" / video["id"]).rglob("*"))


@pytest.mark.parametrize("case", [c for c in CASES if not c.code], ids=lambda c: c.name)
def test_awkward_but_valid_input_is_transcoded(embedded_stack, matrix, case, tmp_path):
    item = matrix[case.name]
    video = item["video"]
    assert item["run"]["state"] == "success", video
    assert (video["status"], video["current_version"]) == ("ready", 1)
    embedded_stack.storage.download_tree(layout.version_prefix(video["id"], 1), str(tmp_path))
    report = check_tree(tmp_path / "hls", expected_duration=video["duration"], expect_audio=video["has_audio"])
    assert report.ok, report.summary()
    renditions = embedded_stack.catalog.get_renditions(video["id"], 1)
    assert all(r["width"] % 2 == 0 and r["height"] % 2 == 0 for r in renditions)
    first = _ffprobe(next((tmp_path / "hls" / renditions[0]["name"]).glob("*.ts")))["streams"]
    picture = next(s for s in first if s["codec_type"] == "video")
    assert picture["codec_name"] == "h264" and picture["pix_fmt"] == "yuv420p"
    assert picture.get("profile") in ("High", "Main", "Constrained Baseline")
    assert picture.get("field_order", "progressive") == "progressive"
    if case.name == "phone rotation":
        assert (video["width"], video["height"]) == (720, 1280)
        assert all(r["height"] > r["width"] for r in renditions)
        assert "side_data_list" not in picture  # upright pixels, no rotation left for players to apply
    if case.name.startswith("10-bit"):  # tone-mapped to SDR, and tagged so: untagged, a player has to guess
        colour = {key: picture.get(key) for key in ("color_space", "color_transfer", "color_primaries")}
        assert colour == dict.fromkeys(colour, "bt709"), colour
    if case.name == "interlaced":  # deinterlaced, not just flagged progressive (libx264 flags it so anyway)
        top = sorted((tmp_path / "hls" / renditions[0]["name"]).glob("*.ts"))  # the source's size: no scaling
        source, published = _idet([item["path"]]), _idet(top)
        assert renditions[0]["height"] == 720 and _combed(source) > 0.9 and source["TFF"] > source["BFF"], source
        assert _combed(published) < 0.1, published
    if case.name == "8K":
        assert (renditions[0]["width"], renditions[0]["height"]) == (1920, 1080)
    if case.name == "odd dimensions 1281x721":
        assert (renditions[0]["width"], renditions[0]["height"]) == (1280, 720)
    if case.name == "key like an ffmpeg option":
        assert video["source_uri"].endswith("/-i /etc/passwd")  # just a key: never an ffmpeg option


def test_the_same_video_twice_at_once_runs_once(embedded_stack, media):
    """Two runs for one video at the same moment: the first to register builds it, the second stands down
    (its tasks are skipped) instead of racing it; one version is published."""
    stack = embedded_stack
    key = f"uploads/twice-{uuid.uuid4().hex[:8]}/clip.mp4"
    stack.storage.client.upload_file(str(media["small"]), "vodflow", key)
    conf = {"source": f"s3://vodflow/{key}"}
    first, second = stack.client.trigger(DAG, conf), stack.client.trigger(DAG, conf)
    runs = [stack.client.wait_for_run(DAG, r, timeout=300) for r in (first, second)]
    assert [r["state"] for r in runs] == ["success", "success"]
    registers = [{t["task_id"]: t["state"] for t in stack.client.task_instances(DAG, r)} for r in (first, second)]
    assert sorted(tasks["prepare"] for tasks in registers) == ["skipped", "success"], registers
    loser = next(tasks for tasks in registers if tasks["prepare"] == "skipped")
    assert loser["publish"] == "skipped" and loser["transcode"] in ("skipped", None)
    video_id = layout.derive_video_id("vodflow", key, stack.storage.head(layout.parse_source_uri(conf["source"])).etag)
    video = stack.catalog.get_video(video_id)
    assert (video["status"], video["current_version"], video["latest_version"]) == ("ready", 1, 1)


def _trigger_and_wait_until_encodes_are_nearly_done(stack, path: Path, name: str) -> tuple[str, str]:
    """Upload ``path``, trigger its run and return (video_id, run_id) once every rendition is 60 % encoded."""
    key = f"uploads/{name}-{uuid.uuid4().hex[:8]}/clip.mp4"
    stack.storage.client.upload_file(str(path), "vodflow", key)
    video_id = f"{name}-{uuid.uuid4().hex[:8]}"
    run_id = stack.client.trigger(DAG, {"source": f"s3://vodflow/{key}", "video_id": video_id})
    deadline = time.monotonic() + 300
    while True:
        video = stack.catalog.get_video(video_id)
        renditions = stack.catalog.get_renditions(video_id, 1) if video else []
        if renditions and min(r["progress"] for r in renditions) >= 60:
            return video_id, run_id
        assert time.monotonic() < deadline, "the encodes never got going"
        time.sleep(0.2)


def test_s3_unreachable_for_30_s_while_renditions_upload(embedded_stack, media, tmp_path):
    """The stack's S3 endpoint refuses every connection for 30 s as the renditions finish: uploads and
    publishing are retried with backoff and the video ends ready with one complete version."""
    stack = embedded_stack
    proxy = stack.s3_proxy
    # Cut S3 when the encodes are nearly done, so that their uploads and the publish fall in the outage.
    video_id, run_id = _trigger_and_wait_until_encodes_are_nearly_done(stack, media["portrait"], "outage")
    proxy.cut()
    assert stack.catalog.get_video(video_id)["status"] != "ready", "the run ended before S3 could be cut"
    time.sleep(30)
    refused = proxy.refused
    proxy.restore()
    restored = datetime.now(UTC)
    run = stack.client.wait_for_run(DAG, run_id, timeout=600)
    tasks = stack.client.task_instances(DAG, run_id)
    assert refused > 0
    assert run["state"] == "success", [(t["task_id"], t["state"], t["try_number"]) for t in tasks]
    # The outage was felt, and retried: the run was midway when S3 went away and finished only after it came
    # back, complete. Where it was retried depends on the load: inside the task (boto's retries, ffmpeg's
    # reconnecting reads) or by Airflow (a new try, with backoff).
    assert datetime.fromisoformat(run["end_date"].replace("Z", "+00:00")) > restored
    video = stack.catalog.get_video(video_id)
    assert (video["status"], video["current_version"]) == ("ready", 1)
    stack.storage.download_tree(layout.version_prefix(video_id, 1), str(tmp_path))
    report = check_tree(tmp_path / "hls", expected_duration=video["duration"], expect_audio=True)
    assert report.ok, report.summary()


def test_s3_failing_the_uploads_until_airflow_retries_publishes_one_complete_version(embedded_stack, media,
                                                                                      tmp_path):
    """S3 answers 500 to every write under the video's prefix as the renditions finish, and keeps doing so until
    Airflow has retried the task (boto's own retries cannot ride it out): the task fails as a transient fault, a
    new try starts after the retry delay, and the video ends ready with one complete version. Reads, and so the
    upload watcher, are untouched."""
    stack = embedded_stack
    proxy = stack.s3_proxy
    video_id, run_id = _trigger_and_wait_until_encodes_are_nearly_done(stack, media["portrait"], "s3-500")
    proxy.fail_writes(f"videos/{video_id}/")
    try:
        deadline = time.monotonic() + 300
        while True:
            transcode = next(t for t in stack.client.task_instances(DAG, run_id) if t["task_id"] == "transcode")
            if transcode["try_number"] >= 2 and transcode["state"] in ("running", "queued", "scheduled"):
                break
            assert transcode["state"] != "failed", "the task failed for good instead of being retried"
            assert time.monotonic() < deadline, f"Airflow never retried the task: {transcode}"
            time.sleep(0.5)
        failed_writes = proxy.failed_writes
    finally:
        proxy.restore()
    run = stack.client.wait_for_run(DAG, run_id, timeout=600)
    tasks = {t["task_id"]: t for t in stack.client.task_instances(DAG, run_id)}
    assert failed_writes > 0
    assert run["state"] == "success", [(t["task_id"], t["state"], t["try_number"]) for t in tasks.values()]
    assert tasks["transcode"]["try_number"] == 2  # one retry: the fault was a fault of the moment, not the video
    video = stack.catalog.get_video(video_id)
    assert (video["status"], video["current_version"], video["error_code"]) == ("ready", 1, None)
    stack.storage.download_tree(layout.version_prefix(video_id, 1), str(tmp_path))
    report = check_tree(tmp_path / "hls", expected_duration=video["duration"], expect_audio=True)
    assert report.ok, report.summary()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_scratch_disk_is_retried_and_survived(embedded_stack, media):
    """Scratch on a 1 MiB tmpfs: the encode fails with 'No space left on device' (a fault of the machine, not
    of the video: retried, not blamed on the upload); with the space back, the retry publishes the video."""
    stack = embedded_stack
    scratch = stack.state_dir / "scratch"
    key = f"uploads/diskfull-{uuid.uuid4().hex[:8]}/clip.mp4"
    stack.storage.client.upload_file(str(media["no_audio"]), "vodflow", key)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(scratch)], check=True)  # noqa: S603
    mounted = True
    try:
        video_id = f"diskfull-{uuid.uuid4().hex[:8]}"
        run_id = stack.client.trigger(DAG, {"source": f"s3://vodflow/{key}", "video_id": video_id})
        deadline = time.monotonic() + 300
        while not any((t["task_id"] == "transcode" and t["try_number"] >= 2) or t["state"] == "up_for_retry"
                      for t in stack.client.task_instances(DAG, run_id)):
            assert time.monotonic() < deadline, "the full disk was never hit"
            time.sleep(0.5)
        video = stack.catalog.get_video(video_id)
        assert video["status"] == "transcoding"  # a full disk does not fail the video
        subprocess.run(["umount", "-l", str(scratch)], check=True)  # noqa: S603
        mounted = False
        run = stack.client.wait_for_run(DAG, run_id, timeout=600)
        assert run["state"] == "success"
        video = stack.catalog.get_video(video_id)
        assert (video["status"], video["current_version"], video["error_code"]) == ("ready", 1, None)
        logs = "\n".join(p.read_text(errors="replace") for p in (stack.state_dir / "logs").rglob("*.log")
                         if f"run_id={run_id}" in str(p))
        assert "the scratch disk is full" in logs and "No space left on device" in logs
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(scratch)], check=False)  # noqa: S603
