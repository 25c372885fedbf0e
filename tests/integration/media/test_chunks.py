"""Chunked encoding on real media: the joined rendition plays as if it had been encoded in one piece."""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path

import pytest

from vodflow.devtools.samples import SampleSpec, make_sample
from vodflow.media.encode import chunks
from vodflow.media.encode.ladder import plan_ladder
from vodflow.media.options import EncoderSettings
from vodflow.media.source.inputs import FILE_PROTOCOLS
from vodflow.media.source.probe import probe

pytestmark = pytest.mark.integration
FRAME = 1 / 30
AAC_FRAME = 1024 / 48000


def _packets(playlist: Path, kind: str) -> list[dict]:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", kind, "-show_entries",  # noqa: S603
                          "packet=pts_time,dts_time,flags", "-of", "json", str(playlist)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["packets"]


@pytest.fixture(scope="module")
def joined(tmp_path_factory):
    """31 s of 640x360 with audio in 12 s chunks (12 + 12 + 7), two renditions, joined."""
    folder = tmp_path_factory.mktemp("chunks")
    src = make_sample(str(folder / "src.mp4"), SampleSpec(640, 360, 31.0, "30", audio=True))
    path = Path(src)
    source = probe(src, path.stat().st_size, path.read_bytes()[:4096], protocols=FILE_PROTOCOLS)
    renditions = list(plan_ladder(source.width, source.height, source.fps, True, ["360p", "240p"]).renditions)
    planned = chunks.plan_chunks(source.duration, renditions[0].fps, 12)
    settings = EncoderSettings()
    parts = [chunks.encode_chunk(src, str(folder / "work"), source, chunk, renditions, settings) for chunk in planned]
    audio = chunks.encode_audio(src, str(folder / "work"), source, sorted({r.audio_kbps for r in renditions}),
                                settings)
    measured = {r.name: chunks.join_rendition([p[r.name] for p in parts], audio[r.audio_kbps],
                                              str(folder / r.name), r, settings) for r in renditions}
    return {"source": source, "chunks": planned, "measured": measured, "folder": folder}


def test_the_seams_add_or_lose_nothing(joined):
    source, planned = joined["source"], joined["chunks"]
    assert [c.start for c in planned] == [0.0, 12.0, 24.0]
    for measured in joined["measured"].values():
        assert abs(measured.duration - source.duration) <= FRAME * len(planned)
        assert [s.duration for s in measured.segments] == pytest.approx([6, 6, 6, 6, 6, 1], abs=FRAME / 2)


def test_video_timestamps_are_continuous_across_seams(joined):
    for name in joined["measured"]:
        pts = sorted(float(p["pts_time"]) for p in _packets(joined["folder"] / name / "index.m3u8", "v"))
        steps = [b - a for a, b in itertools.pairwise(pts)]
        assert len(pts) == 930  # 31 s at 30 fps: no frame lost or doubled at 12 s and 24 s
        assert min(steps) == pytest.approx(FRAME, abs=1e-3) and max(steps) == pytest.approx(FRAME, abs=1e-3)


def test_keyframes_align_across_renditions_on_the_2_s_grid(joined):
    keyframes = {}
    for name in joined["measured"]:
        packets = _packets(joined["folder"] / name / "index.m3u8", "v")
        first = min(float(p["pts_time"]) for p in packets)
        keyframes[name] = sorted(round(float(p["pts_time"]) - first, 3) for p in packets if "K" in p["flags"])
    assert keyframes["360p"] == keyframes["240p"] == [float(t) for t in range(0, 31, 2)]


def test_audio_is_continuous(joined):
    for name in joined["measured"]:
        packets = _packets(joined["folder"] / name / "index.m3u8", "a")
        pts = [float(p["pts_time"]) for p in packets]
        steps = [b - a for a, b in itertools.pairwise(pts)]
        assert max(steps) < 1.5 * AAC_FRAME and min(steps) > 0.5 * AAC_FRAME  # no gap, no overlap at a seam
        assert pts[-1] + AAC_FRAME - pts[0] == pytest.approx(joined["source"].duration, abs=0.05)
