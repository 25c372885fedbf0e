"""The early path's segment watcher against real ffmpeg with the encodes' own HLS muxer options: each segment is
handed on as ffmpeg closes it (not once the next one exists, a whole segment later), complete, with ffmpeg's
own duration, in order, and the last one once ffmpeg has exited."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import ffmpeg
import m3u8
import pytest

from vodflow.media.encode.ffmpeg import hls_muxer_options, keyframe_expression, segment_name
from vodflow.media.options import EncoderSettings
from vodflow.pipeline.early.watcher import SegmentWatcher

pytestmark = pytest.mark.integration


def test_each_segment_is_handed_on_as_ffmpeg_closes_it(tmp_path: Path):
    settings = EncoderSettings()
    out = tmp_path / "240p"
    out.mkdir()
    reported: list[tuple[int, float, bool, int, bool]] = []
    ffmpeg_running = threading.Event()

    def on_segment(track: str, seq: int, path: str, duration: float) -> None:
        assert track == "240p"
        reported.append((seq, duration, (out / segment_name(seq + 1)).exists(), os.path.getsize(path),
                         ffmpeg_running.is_set()))

    # 13 s read at its own rate: ffmpeg closes a segment about every 6 s, far apart from the watcher's polls.
    args = (ffmpeg.input("testsrc2=s=320x240:r=30:d=13", f="lavfi", re=None)
            .output(str(out / "index.m3u8"), **{"c:v": "libx264", "preset": "ultrafast",
                                                "force_key_frames": keyframe_expression("30", settings),
                                                **hls_muxer_options(settings, str(out))})
            .global_args("-hide_banner", "-nostdin", "-loglevel", "error").compile())
    watcher = SegmentWatcher({"240p": str(out)}, on_segment).start()
    ffmpeg_running.set()
    subprocess.run(args, check=True, timeout=120)  # noqa: S603 - argument list
    ffmpeg_running.clear()
    last = watcher.finish()

    final = m3u8.load(str(out / "index.m3u8"))
    assert last == {"240p": 2}
    assert [(seq, duration) for seq, duration, *_ in reported] == [
        (seq, round(float(s.duration), 6)) for seq, s in enumerate(final.segments)] == [(0, 6.0), (1, 6.0), (2, 1.0)]
    for seq, _, next_existed, size, during_encode in reported[:2]:
        assert during_encode, f"segment {seq} was handed on only after ffmpeg exited"
        assert not next_existed, f"segment {seq} was handed on only once segment {seq + 1} existed"
        assert size == (out / segment_name(seq)).stat().st_size  # complete when handed on
    assert not list(out.glob("*.tmp"))
