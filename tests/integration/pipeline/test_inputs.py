"""Awkward real-world inputs through the pipeline's steps (real ffmpeg, S3 over HTTP, the Postgres catalog): an
upload that asks for more decoding than a job may do, a music upload whose picture changes every 10 s, and a
broadcast MPEG-TS cut in chunks."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import uuid
from pathlib import Path

import m3u8
import pytest
from airflow.sdk.definitions.retry_policy import RetryAction

from tests.avsync import measure_sync
from vodflow import errors, layout, pipeline
from vodflow.devtools.conformance import check_tree
from vodflow.devtools.samples import make_broadcast_ts, make_decode_bomb, make_still_picture_sample
from vodflow.errors import BadInput

from .helpers import run_all, upload

pytestmark = pytest.mark.integration
DAGS = Path(__file__).resolve().parents[3] / "dags"


def _ffprobe(path: Path, *entries: str) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", *entries, "-of", "json", str(path)],  # noqa: S603
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def _dag_retry_policy():
    """The retry policy transcode_video's tasks run with, from the DAG file itself."""
    spec = importlib.util.spec_from_file_location("transcode_video_dag", DAGS / "transcode_video.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(DAGS))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(DAGS))
    return module.DEFAULT_ARGS["retry_policy"]


def test_an_upload_demanding_unbounded_decoding_is_refused_at_probe_and_never_retried(services, tmp_path):
    """8192x8192 at 60 fps for 3.5 h in 200 kB: each limit alone lets it through (the side is at most 8192, the
    duration at most 4 h); the decode budget (4 h of 4K60) does not. Refused at probe, before any encode, with its
    reason; the DAG's retry policy fails it at once; nothing is published."""
    bomb = Path(make_decode_bomb(str(tmp_path / "bomb.mkv")))
    assert bomb.stat().st_size < 1_000_000
    source = upload(services, bomb, f"uploads/{uuid.uuid4().hex[:6]}/bomb.mkv")
    job = pipeline.register({"source": source}, "run-bomb", services)
    with pytest.raises(BadInput) as caught:
        pipeline.probe_source(services, job)
    assert caught.value.code == errors.TOO_LARGE
    assert "8192x8192 at 60 fps" in caught.value.message and "4 h of 4K at 60 fps" in caught.value.message
    assert _dag_retry_policy().evaluate(caught.value, 1, 4).action == RetryAction.FAIL
    pipeline.record_failure(job.to_dict(), "prepare", None, caught.value, 1, services)
    pipeline.discard_unpublished(job, services)
    video = services.catalog.get_video(job.video_id)
    assert (video["status"], video["error_code"]) == ("failed", errors.TOO_LARGE)
    assert video["error_message"] == caught.value.message
    assert services.catalog.get_renditions(job.video_id, job.version) == []  # never planned, never encoded
    assert services.storage.list_keys(layout.video_prefix(job.video_id)) == []


@pytest.mark.parametrize("chunk_seconds", [0, 6], ids=["whole", "chunked"])
@pytest.mark.parametrize("pictures", [1, None], ids=["one-picture", "a-picture-every-10s"])
def test_a_still_picture_music_upload_has_a_picture_in_every_segment_and_all_its_sound(services, tmp_path,
                                                                                      pictures, chunk_seconds):
    """A picture every 10 s (the container says 0.1 fps) over 20 s of sound, one picture only (its video stream
    ends at 10 s) or one every 10 s: published on the 2 s keyframe and 6 s segment grid, every segment holding
    decodable pictures, the last picture held while the sound runs, the whole sound; encoded whole or in chunks."""
    path = Path(make_still_picture_sample(str(tmp_path / "music.mp4"), duration=20.0, picture_seconds=10.0,
                                          pictures=pictures))
    assert _ffprobe(path, "-select_streams", "v", "-show_entries", "stream=avg_frame_rate")[
        "streams"][0]["avg_frame_rate"] == "1/10"
    source = upload(services, path, f"uploads/{uuid.uuid4().hex[:6]}/music.mp4")
    run = run_all(services, {"source": source, **({"chunk_seconds": chunk_seconds} if chunk_seconds else {})},
                  f"run-music-{chunk_seconds}")
    assert len(run["items"]) == (4 if chunk_seconds else 1)  # the audio and 3 chunks, or the whole video
    video_id = run["job"].video_id
    video = services.catalog.get_video(video_id)
    assert video["status"] == "ready"
    out = tmp_path / "out"
    services.storage.download_tree(layout.version_prefix(video_id, 1), str(out))
    report = check_tree(out / "hls", expected_duration=20.0, expect_audio=True)
    assert report.ok, report.summary()
    source_audio = float(_ffprobe(path, "-select_streams", "a", "-show_entries", "stream=duration")[
        "streams"][0]["duration"])
    master = m3u8.load(str(out / "hls" / "master.m3u8"))
    for variant in master.playlists:
        frame = 1 / variant.stream_info.frame_rate
        assert frame <= 1 / 2  # at least 2 pictures a second: 4 in every 2 s keyframe interval
        folder = out / "hls" / Path(variant.uri).parent
        playlist = m3u8.load(str(out / "hls" / variant.uri))
        assert playlist.target_duration == 6
        for segment in playlist.segments:
            assert segment.duration <= 6.0
            [picture] = _ffprobe(folder / segment.uri, "-select_streams", "v", "-show_entries",
                                 "stream=width,height,nb_read_frames")["streams"]
            assert picture["width"] > 0 and int(picture["nb_read_frames"]) >= 1, (segment.uri, picture)
        sound = _ffprobe(out / "hls" / variant.uri, "-select_streams", "a", "-show_entries",
                         "packet=pts_time,duration_time")["packets"]
        heard = float(sound[-1]["pts_time"]) + float(sound[-1]["duration_time"]) - float(sound[0]["pts_time"])
        assert heard == pytest.approx(source_audio, abs=0.05), (heard, source_audio)  # the whole sound


@pytest.mark.parametrize("audio_lead", [0.3, -0.3], ids=["audio-first", "video-first"])
def test_a_chunked_broadcast_ts_is_ready_and_in_sync_at_every_seam(services, tmp_path, audio_lead):
    """29.97 fps MPEG-TS with 2 s GOPs, its clock starting at 10 s and its audio 0.3 s ahead of its video (or
    behind it), in 30 s chunks. An MPEG-TS seek lands on any packet, not on a keyframe: a chunk read from 1 s before
    its start began at the next keyframe, 10 frames late, and was called truncated. Read without a seek and with
    one kind of stream, ffmpeg moves an MPEG-TS's start to that stream's: the first chunk (video only) or the audio
    came out 0.3 s off. Now every chunk is whole, and every flash stays within 45 ms of its beep across both
    seams."""
    path = Path(make_broadcast_ts(str(tmp_path / "broadcast.ts"), duration=75.0, audio_lead=audio_lead, start=10.0))
    source = upload(services, path, f"uploads/{uuid.uuid4().hex[:6]}/broadcast.ts")
    run = run_all(services, {"source": source, "chunk_seconds": 30}, "run-broadcast")
    assert [item.label for item in run["items"]] == ["audio", "chunk 00", "chunk 01", "chunk 02"]
    video_id = run["job"].video_id
    assert services.catalog.get_video(video_id)["status"] == "ready"
    out = tmp_path / "out"
    services.storage.download_tree(layout.version_prefix(video_id, 1), str(out))
    report = check_tree(out / "hls", expected_duration=run["probed"].picture_end, expect_audio=True)
    assert report.ok, report.summary()
    [variant] = m3u8.load(str(out / "hls" / "master.m3u8")).playlists
    sync = measure_sync(out / "hls" / variant.uri)
    assert len(sync.flashes) == len(sync.beeps) == 74, (sync.flashes, sync.beeps)  # one each second, none lost
    assert any(29 < f < 31 for f in sync.flashes) and any(59 < f < 61 for f in sync.flashes)  # at the seams
    assert sync.worst_ms <= 45.0, sync.offsets_ms
    assert max(sync.offsets_ms) - min(sync.offsets_ms) <= 10.0, sync.offsets_ms
    assert sync.frames == pytest.approx(75.0 * 30000 / 1001, abs=2)
