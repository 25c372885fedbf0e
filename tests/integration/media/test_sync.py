"""Lip sync and frame-exact seams on real media, measured like broadcast engineers do: a source with a flash
frame and a beep at every whole second, its audio starting 0.3 s before its video, encoded whole and in chunks;
the flashes and beep onsets are found again in the joined rendition (``tests/avsync.py``)."""

from __future__ import annotations

import itertools
import json
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from tests.avsync import measure_sync
from vodflow.devtools.samples import make_sync_sample
from vodflow.media.encode import chunks
from vodflow.media.encode.ladder import plan_ladder
from vodflow.media.encode.renditions import encode_renditions
from vodflow.media.options import EncoderSettings
from vodflow.media.source.inputs import FILE_PROTOCOLS
from vodflow.media.source.probe import probe

pytestmark = pytest.mark.integration
DURATION = 31.0  # chunks of 12 s: 0, 12, 24 (a 7 s tail)
LEAD = 0.3


def _video_pts(playlist: Path) -> list[float]:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",  # noqa: S603
                          "packet=pts_time", "-of", "json", str(playlist)],
                         capture_output=True, text=True, check=True).stdout
    return sorted(float(p["pts_time"]) for p in json.loads(out)["packets"])


@pytest.fixture(scope="module", params=["24000/1001", "30000/1001", "25", "30", "60000/1001"])
def encoded(request, tmp_path_factory):
    fps = request.param
    folder = tmp_path_factory.mktemp("sync")
    src = make_sync_sample(str(folder / "src.mp4"), DURATION, fps, audio_lead=LEAD)
    path = Path(src)
    source = probe(src, path.stat().st_size, path.read_bytes()[:4096], protocols=FILE_PROTOCOLS)
    [rendition] = plan_ladder(source.width, source.height, source.fps, True, "default").renditions
    settings = EncoderSettings()
    encode_renditions(src, str(folder / "whole"), source, [rendition], settings)
    planned = chunks.plan_chunks(source.duration, rendition.fps, 12)
    parts = [chunks.encode_chunk(src, str(folder / "work"), source, c, [rendition], settings) for c in planned]
    audio = chunks.encode_audio(src, str(folder / "work"), source, [rendition.audio_kbps], settings)
    chunks.join_rendition([p[rendition.name] for p in parts], audio[rendition.audio_kbps], str(folder / "joined"),
                          rendition, settings)
    return {"fps": Fraction(fps), "chunks": planned,
            "whole": folder / "whole" / rendition.name / "index.m3u8", "joined": folder / "joined" / "index.m3u8"}


def test_chunk_boundaries_are_exact_on_the_output_frame_grid(encoded):
    """No frame lost or doubled at a seam: as many frames as the unchunked encode, one frame apart throughout."""
    fps = encoded["fps"]
    assert [c.start for c in encoded["chunks"]] == [0.0, 12.0, 24.0]
    whole, joined = _video_pts(encoded["whole"]), _video_pts(encoded["joined"])
    assert len(joined) == len(whole)
    # The video is held from 0 (its first picture) to where the audio starts, so the grid covers the source.
    assert abs(len(joined) - DURATION * fps) <= 1
    steps = [b - a for a, b in itertools.pairwise(joined)]
    assert min(steps) == pytest.approx(float(1 / fps), abs=2e-4)
    assert max(steps) == pytest.approx(float(1 / fps), abs=2e-4)


@pytest.mark.parametrize("shape", ["whole", "joined"])
def test_picture_and_sound_stay_within_one_frame(encoded, shape):
    """Every flash within one frame (and 45 ms) of its beep, from the first chunk (whose video starts after its
    audio) across every seam; and no jump: the offset is the same everywhere."""
    report = measure_sync(encoded[shape])
    frame_ms = 1000 / float(encoded["fps"])
    assert len(report.flashes) == len(report.beeps) == int(DURATION) - 1  # a flash and a beep each second
    assert report.worst_ms <= min(45.0, frame_ms), report.offsets_ms
    assert max(report.offsets_ms) - min(report.offsets_ms) <= 10.0, report.offsets_ms
