"""WebM downloads on real media (``media.package.webm``): AV1 + Opus, as long as the rendition to a frame, its
sound where the source's is (a beep at every second, found again), keyframes every 2 s, the index (Cues) ahead of
the clusters, no metadata; made by encoding the H.264 segments, or by copying an AV1 CMAF track."""

from __future__ import annotations

import json
import re
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from tests.avsync import measure_sync
from vodflow.media.package import webm

from .webmfiles import FPS, av1_cmaf_track, encoded_webm, sync_rendition

pytestmark = pytest.mark.integration
FRAME = float(1 / Fraction(FPS))
SEGMENT, CUES, CLUSTER = 0x18538067, 0x1C53BB6B, 0x1F43B675


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return sync_rendition(tmp_path_factory.mktemp("webm"))


@pytest.fixture(scope="module")
def source_beeps(made) -> list[float]:
    """The source's beeps on its own timeline (from its container's start, as the rendition's timeline is)."""
    start = float(_ffprobe(made.source, "format=start_time")["format"]["start_time"])
    return [b - start for b in measure_sync(made.source).beeps]


def _ffprobe(path: Path, entries: str, *extra: str) -> dict:
    return json.loads(subprocess.run(["ffprobe", "-v", "error", *extra, "-show_entries", entries,  # noqa: S603
                                      "-of", "json", str(path)], capture_output=True, text=True, check=True).stdout)


def _vint(data: bytes, at: int, keep_marker: bool) -> tuple[int, int]:
    length = 8 - data[at].bit_length() + 1
    value = data[at] if keep_marker else data[at] & (0xFF >> length)
    for byte in data[at + 1:at + length]:
        value = (value << 8) | byte
    return value, at + length


def segment_children(path: Path) -> list[int]:
    """The IDs of the Matroska Segment's top-level elements, in file order (a minimal EBML reader)."""
    data = path.read_bytes()
    at, ids = 0, []
    while at < len(data):
        element, at = _vint(data, at, keep_marker=True)
        size, at = _vint(data, at, keep_marker=False)
        if element == SEGMENT:
            continue  # descend
        ids.append(element)
        at += size
    return ids


def check_download(path: Path, made, source_beeps: list[float]) -> dict:
    """Everything a WebM download promises, measured on the file."""
    info = _ffprobe(path, "stream=codec_type,codec_name,profile,level,width,height,sample_rate,channels:"
                          "stream_tags:format=duration,start_time:format_tags")
    video, audio = info["streams"]
    assert (video["codec_name"], video["profile"], video["width"], video["height"]) == (
        "av1", "Main", made.rendition.width, made.rendition.height)
    assert (audio["codec_name"], audio["sample_rate"], audio["channels"]) == ("opus", "48000", 2)
    assert set(info["format"].get("tags", {})) <= {"ENCODER"}, info["format"]  # no title, nothing of the source

    rendition = made.measured.duration
    frames = _ffprobe(path, "packet=pts_time,duration_time,flags", "-select_streams", "v:0")["packets"]
    last = max(frames, key=lambda p: float(p["pts_time"]))
    picture_end = float(last["pts_time"]) + float(last["duration_time"])
    assert float(frames[0]["pts_time"]) == 0.0  # the first picture at 0
    assert abs(picture_end - rendition) <= FRAME, (picture_end, rendition)
    assert abs(float(info["format"]["duration"]) - rendition) <= FRAME, (info["format"], rendition)
    keyframes = [float(p["pts_time"]) for p in frames if p["flags"].startswith("K")]
    assert [round(k / 2) * 2 for k in keyframes] == [0, 2, 4] and all(
        abs(k - round(k / 2) * 2) <= FRAME for k in keyframes), keyframes

    children = segment_children(path)  # seekable while it downloads: the index comes before the pictures
    assert CUES in children and children.index(CUES) < children.index(CLUSTER), [hex(c) for c in children]

    sync = measure_sync(path)
    assert len(sync.beeps) == len(source_beeps) == 4 and len(sync.flashes) == 4, (sync, source_beeps)
    assert sync.worst_ms <= 50, sync.offsets_ms
    moved = [1000 * (a - b) for a, b in zip(sync.beeps, source_beeps, strict=True)]
    assert max(abs(m) for m in moved) <= 50, moved  # the sound where the source has it
    return {"video_level": int(video["level"]), "sync_ms": sync.offsets_ms, "moved_ms": moved}


def test_an_encoded_webm_is_av1_and_opus_in_sync_with_cues_first(made, source_beeps, tmp_path):
    out = tmp_path / "360p.webm"
    facts = encoded_webm(made, out)
    measured = check_download(out, made, source_beeps)
    assert re.fullmatch(r"av01\.0\.\d\dM\.08,opus", facts.codecs), facts
    assert facts.codecs == f"av01.0.{measured['video_level']:02d}M.08,opus"  # the level ffprobe reads, too
    assert abs(facts.duration - made.measured.duration) <= FRAME


def test_a_copied_av1_track_keeps_its_packets_and_gets_the_renditions_sound(made, source_beeps, tmp_path):
    track = av1_cmaf_track(made, tmp_path / "av1-360p")
    out = tmp_path / "copied.webm"
    facts = webm.make_webm(made.segments, str(out), made.measured.duration, av1=track,
                           audio_kbps=made.rendition.audio_kbps)
    check_download(out, made, source_beeps)
    fmp4 = tmp_path / "track.mp4"
    fmp4.write_bytes(b"".join(Path(p).read_bytes() for p in (track.init, *track.segments)))
    sizes = [[p["size"] for p in _ffprobe(f, "packet=size", "-select_streams", "v:0")["packets"]] for f in (fmp4, out)]
    assert sizes[0] == sizes[1]  # stream copy: the same AV1 packets, not a new encode
    assert facts.codecs.endswith(",opus") and facts.codecs.startswith("av01.0.")


def test_a_silent_rendition_gets_a_picture_only_webm(made, tmp_path):
    track = av1_cmaf_track(made, tmp_path / "av1-360p")
    out = tmp_path / "silent.webm"
    facts = webm.make_webm(made.segments, str(out), made.measured.duration, av1=track, audio_kbps=0)
    assert [s["codec_name"] for s in _ffprobe(out, "stream=codec_name")["streams"]] == ["av1"]
    assert "opus" not in facts.codecs and abs(facts.duration - made.measured.duration) <= FRAME


def test_a_webm_is_made_one_way(made, tmp_path):
    with pytest.raises(ValueError):
        webm.webm_command(made.segments, str(tmp_path / "x.webm"), 5.0)
