"""Sources with awkward timestamps (missing, wrapping) encode to a continuous output (real ffmpeg, real files);
two captures whose clock restarts are in tests/integration/pipeline/test_pipeline.py."""

from __future__ import annotations

import itertools
import json
import subprocess

import pytest

from vodflow.media.encode.ladder import plan_ladder
from vodflow.media.encode.renditions import encode_renditions
from vodflow.media.options import EncoderSettings
from vodflow.media.source.inputs import FILE_PROTOCOLS
from vodflow.media.source.probe import probe

pytestmark = pytest.mark.integration


def test_an_avi_without_presentation_timestamps_encodes_continuously(tmp_path):
    """MPEG-4 Part 2 with B-frames in AVI: its packets carry no PTS; the output is 25 fps, one frame apart."""
    src = tmp_path / "packed.avi"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi",  # noqa: S603
                    "-i", "testsrc2=size=320x180:rate=25", "-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "6",
                    "-c:v", "mpeg4", "-bf", "2", "-c:a", "mp3", str(src)], check=True)
    packets = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries",  # noqa: S603
                              "packet=pts", "-of", "csv=p=0", str(src)], capture_output=True, text=True,
                             check=True).stdout.split()
    assert "N/A" in packets  # the premise: timestamps are missing
    source = probe(str(src), src.stat().st_size, src.read_bytes()[:4096], protocols=FILE_PROTOCOLS)
    [rendition] = plan_ladder(source.width, source.height, source.fps, True, "default").renditions
    encode_renditions(str(src), str(tmp_path / "out"), source, [rendition], EncoderSettings())
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries",  # noqa: S603
                          "packet=pts_time", "-of", "json", str(tmp_path / "out" / rendition.name / "index.m3u8")],
                         capture_output=True, text=True, check=True).stdout
    pts = sorted(float(p["pts_time"]) for p in json.loads(out)["packets"])
    steps = [b - a for a, b in itertools.pairwise(pts)]
    assert abs(len(pts) - 150) <= 1  # 6 s at 25 fps (the container says 6.048 s)
    assert min(steps) == pytest.approx(0.04, abs=1e-3) and max(steps) == pytest.approx(0.04, abs=1e-3)


def test_a_ts_whose_clock_wraps_encodes_continuously(tmp_path):
    """An MPEG-TS whose 33-bit PTS wraps 2.3 s in (ffprobe gives it a negative start time): 8 s out, no jump."""
    src = tmp_path / "wrap.ts"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi",  # noqa: S603
                    "-i", "testsrc2=size=320x180:rate=30", "-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "8",
                    "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-output_ts_offset", "95440",
                    "-f", "mpegts", str(src)], check=True)
    source = probe(str(src), src.stat().st_size, src.read_bytes()[:4096], protocols=FILE_PROTOCOLS)
    assert source.duration == pytest.approx(8.0, abs=0.05) and not source.discontinuous
    [rendition] = plan_ladder(source.width, source.height, source.fps, True, "default").renditions
    encode_renditions(str(src), str(tmp_path / "out"), source, [rendition], EncoderSettings())
    for kind, step in (("v", 1 / 30), ("a", 1024 / 48000)):
        out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", kind, "-show_entries",  # noqa: S603
                              "packet=pts_time", "-of", "json", str(tmp_path / "out" / rendition.name / "index.m3u8")],
                             capture_output=True, text=True, check=True).stdout
        pts = sorted(float(p["pts_time"]) for p in json.loads(out)["packets"])
        steps = [b - a for a, b in itertools.pairwise(pts)]
        assert max(steps) < 1.5 * step and min(steps) > 0.5 * step, kind
        assert pts[-1] - pts[0] == pytest.approx(8.0, abs=0.05), kind
