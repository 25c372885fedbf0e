"""A chunked per-title run measures its renditions too: each chunk scores the VMAF windows inside it, on the
transcode worker, from its own pieces, and ``publish`` pools them into the catalog."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from vodflow.devtools.samples import make_animation_sample
from vodflow.media.encode.chunks import encode_chunk, plan_chunks
from vodflow.media.encode.ladder import plan_ladder
from vodflow.media.options import EncoderSettings
from vodflow.media.pictures.thumbnails import plan_pictures
from vodflow.media.quality.vmaf import pooled, rendition_frame_scores
from vodflow.media.source.inputs import FILE_PROTOCOLS
from vodflow.media.source.probe import probe
from vodflow.pipeline.ladder_decision import chunk_windows
from vodflow.pipeline.work import EncodePlan

from .helpers import run_all, upload

pytestmark = pytest.mark.integration


def test_a_chunk_scores_its_windows_on_the_frames_they_hold(tmp_path):
    """Moving content in two chunks (0–12 s, 12–19 s) with a window in each (at 6 s: 6 s into the first piece; at
    12 s: the second piece's start): a high score, and a clearly lower one when the pieces are read a single frame
    late — so a window is scored against the very source frames it was encoded from."""
    path = make_animation_sample(str(tmp_path / "animation.mp4"), 640, 360, 19.0)
    source = probe(path, Path(path).stat().st_size, Path(path).read_bytes()[:4096], protocols=FILE_PROTOCOLS)
    rendition = plan_ladder(source.width, source.height, source.fps, False).renditions[0]
    chunks = plan_chunks(source.duration, rendition.fps, 12.0)
    plan = EncodePlan(renditions=(rendition,), duration=source.duration, chunks=len(chunks),
                      pictures=plan_pictures(source.width, source.height, source.duration, rendition.fps))
    scored, late = [], []
    for chunk in chunks:
        pieces = encode_chunk(path, str(tmp_path / f"c{chunk.index}"), source, chunk, [rendition], EncoderSettings())
        windows = chunk_windows(source, plan, chunk, pieces, segment_seconds=6)
        assert [(w.start, w.offset) for w in windows] == [[(6.0, 6.0)], [(12.0, 0.0)]][chunk.index]
        [frames] = rendition_frame_scores(path, source, windows, rendition.width, rendition.height, rendition.fps)
        scored += frames
        shifted = [replace(w, offset=w.offset + 1 / 30) for w in windows]
        [frames] = rendition_frame_scores(path, source, shifted, rendition.width, rendition.height, rendition.fps)
        late += frames
    aligned, off = pooled(scored), pooled(late)
    assert aligned.frames == off.frames == 12  # 2 windows of 2 s, every 10th frame
    assert aligned.mean > 80 and off.mean < aligned.mean - 8, (aligned, off)


def test_a_chunked_per_title_run_records_every_renditions_vmaf(services, tmp_path):
    path = Path(make_animation_sample(str(tmp_path / "animation.mp4"), 640, 360, 13.0))
    source = upload(services, path, f"uploads/{uuid.uuid4().hex[:6]}/animation.mp4")
    run = run_all(services, {"source": source, "chunk_seconds": 6, "adaptive": True}, "run-chunked-per-title")
    assert [item.label for item in run["items"]] == ["audio", "chunk 00", "chunk 01"]
    video_id = run["job"].video_id
    assert services.catalog.get_video(video_id)["status"] == "ready"
    renditions = [r for r in services.catalog.get_renditions(video_id, 1) if r["status"] == "done"]
    assert renditions and all(0 < r["vmaf_p5"] <= r["vmaf"] <= 100 for r in renditions), renditions
    vmaf = [r["vmaf"] for r in renditions]
    assert vmaf == sorted(vmaf, reverse=True), renditions  # the ladder's rungs, best first
    [quality] = [e for e in services.catalog.get_events(video_id) if e["kind"] == "quality"]
    assert sorted(quality["detail"]["vmaf"]) == sorted(r["name"] for r in renditions)
