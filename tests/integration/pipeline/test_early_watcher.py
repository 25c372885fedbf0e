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
from vodflow.media.encode.ladder import Rendition
from vodflow.media.encode.renditions import hls_output
from vodflow.media.encode.segmented import discard_after_lead_in, early_grid
from vodflow.media.options import EncoderSettings
from vodflow.pipeline.early.watcher import LeadIn, SegmentWatcher

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


def test_the_lead_in_pieces_come_first_and_the_vod_segments_follow_them(tmp_path: Path):
    """With a lead-in, the first 6 s are handed on as three 2 s pieces, each as ffmpeg closes it (the first
    long before the first VOD segment exists), from the same packets as the VOD segment (the same frames and
    samples, contiguous timestamps); the VOD's later segments follow under early seqs 3, 4."""
    settings = EncoderSettings()
    grid = early_grid(settings)
    out, lead_dir = tmp_path / "hls" / "240p", tmp_path / "lead" / "240p"
    out.mkdir(parents=True)
    discard_after_lead_in(str(lead_dir), grid.lead)
    rendition = Rendition(name="240p", width=320, height=240, video_kbps=300, maxrate_kbps=450, bufsize_kbits=600,
                          audio_kbps=64, fps="30")
    reported: list[tuple[int, str, float, bool]] = []

    def on_segment(track: str, seq: int, path: str, duration: float) -> None:
        reported.append((seq, path, duration, (out / segment_name(0)).exists()))

    video = ffmpeg.input("testsrc2=s=320x240:r=30:d=13", f="lavfi", re=None).video
    audio = ffmpeg.input("sine=f=440:r=48000:d=13", f="lavfi", re=None).audio
    args = (hls_output([video, audio], rendition, settings, str(out), str(lead_dir))
            .global_args("-hide_banner", "-nostdin", "-loglevel", "error").compile())
    watcher = SegmentWatcher({"240p": str(out)}, on_segment,
                             lead=LeadIn({"240p": str(lead_dir)}, {"240p": "30"}, grid)).start()
    subprocess.run(args, check=True, timeout=120)  # noqa: S603 - argument list
    assert watcher.finish() == {"240p": 4}

    assert [(seq, duration) for seq, _, duration, _ in reported] == [(0, 2.0), (1, 2.0), (2, 2.0), (3, 6.0), (4, 1.0)]
    assert [os.path.basename(path) for _, path, _, _ in reported] == [
        segment_name(0), segment_name(1), segment_name(2), segment_name(1), segment_name(2)]
    assert [os.path.dirname(path) for _, path, _, _ in reported] == [str(lead_dir)] * 3 + [str(out)] * 2
    assert not reported[0][3], "the first lead-in piece was handed on only once the first VOD segment existed"
    assert (lead_dir / segment_name(3)).is_symlink()  # the rest of the video went to the null device

    def packets(paths: list[Path], kind: str) -> list[tuple[str, str]]:
        found = []
        for path in paths:
            probe = ffmpeg.probe(str(path), show_packets=None, select_streams=kind, show_data_hash="MD5")
            found += [(p["pts"], p["data_hash"]) for p in probe["packets"]]
        return found

    pieces = [lead_dir / segment_name(seq) for seq in range(3)]
    for kind in ("v", "a"):  # the same encoded frames and samples, at the same timestamps
        assert packets(pieces, kind) == packets([out / segment_name(0)], kind)
