"""Real ffmpeg on real encoded media: probe, encode every rendition, assemble, and check the result as a player
(and Apple's authoring rules) would: ffprobe on every segment, parsed playlists, measured bitrates."""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from vodflow import errors
from vodflow.devtools.conformance import check_tree
from vodflow.errors import BadInput, MediaToolError
from vodflow.media.encode.ladder import plan_ladder
from vodflow.media.encode.renditions import encode_rendition, encode_renditions
from vodflow.media.options import EncoderSettings
from vodflow.media.package.hls import render_playlists
from vodflow.media.package.mpegts import index_segment
from vodflow.media.pictures.thumbnails import choose_poster, picture_outputs, plan_pictures
from vodflow.media.source.info import SourceInfo
from vodflow.media.source.inputs import FILE_PROTOCOLS
from vodflow.media.source.probe import probe

pytestmark = pytest.mark.integration


def probe_file(path: Path) -> SourceInfo:
    with open(path, "rb") as f:
        head = f.read(4096)
    return probe(str(path), path.stat().st_size, head, protocols=FILE_PROTOCOLS)


def encode_ladder(path: Path, out: Path) -> tuple[SourceInfo, Path]:
    """What the DAG does, minus S3: every rendition in parallel, then the playlists."""
    source = probe_file(path)
    ladder = plan_ladder(source.width, source.height, source.fps, source.has_audio)
    hls_dir = out / "hls"
    with ThreadPoolExecutor(max_workers=len(ladder.renditions)) as pool:
        measured = list(pool.map(lambda r: encode_rendition(str(path), str(hls_dir / r.name), source, r,
                                                            EncoderSettings()), ladder.renditions))
    for rendition_dir in hls_dir.iterdir():
        (rendition_dir / "index.m3u8").unlink()  # ffmpeg's own playlist is not published
    _, files = render_playlists(measured)
    for relative, text in files.items():
        (hls_dir / relative).write_text(text)
    return source, hls_dir


@pytest.mark.parametrize("name,expected_top,renditions", [
    ("landscape", (1920, 1080), 4),
    ("portrait", (720, 1280), 3),
    ("no_audio", (1280, 720), 3),
])
def test_ladder_is_conformant_hls(media, tmp_path, name, expected_top, renditions):
    source, hls_dir = encode_ladder(media[name], tmp_path)
    report = check_tree(hls_dir, expected_duration=source.duration, expect_audio=source.has_audio)
    assert report.ok, report.summary()
    master = (hls_dir / "master.m3u8").read_text()
    assert master.count("#EXT-X-STREAM-INF") == renditions
    assert f"RESOLUTION={expected_top[0]}x{expected_top[1]}" in master
    assert ("mp4a.40.2" in master) == source.has_audio


def test_segment_index_agrees_with_ffprobe(media, tmp_path):
    """The production measurement (our TS parser) against ffprobe on a real segment."""
    _, hls_dir = encode_ladder(media["small"], tmp_path)
    segment = next((hls_dir / "240p").glob("seg_*.ts"))
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries",  # noqa: S603
                          "packet=pos,flags,pts", "-of", "json", str(segment)],
                         capture_output=True, text=True, check=True).stdout
    packets = json.loads(out)["packets"]
    index = index_segment(segment.read_bytes())
    assert [p.offset for p in index.keyframes] == [int(p["pos"]) for p in packets if "K" in p["flags"]]
    assert [p.pts for p in index.pes] == [int(p["pts"]) for p in packets]


def test_pictures_come_from_the_encodes_decode(media, tmp_path):
    """The poster and thumbnails are extra outputs of the renditions' ffmpeg: real JPEGs of the planned sizes,
    each thumbnail a different instant, next to a conformant ladder."""
    source = probe_file(media["portrait"])
    renditions = list(plan_ladder(source.width, source.height, source.fps, source.has_audio).renditions)
    plan = plan_pictures(source.width, source.height, source.duration, renditions[0].fps)
    pictures = tmp_path / "thumbs"
    pictures.mkdir()
    encode_renditions(str(media["portrait"]), str(tmp_path / "hls"), source, renditions, EncoderSettings(),
                      extra_outputs=lambda video: picture_outputs(video, plan, str(pictures)))
    choose_poster(str(pictures))  # the five candidates become poster.jpg
    names = sorted(p.name for p in pictures.iterdir())
    assert names == ["001.jpg", "002.jpg", "003.jpg", "004.jpg", "005.jpg", "poster.jpg"]  # 10 s: every 2 s
    for name in names:
        out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height",  # noqa: S603
                              "-of", "json", str(pictures / name)], capture_output=True, text=True,
                             check=True).stdout
        stream = json.loads(out)["streams"][0]
        assert stream["codec_name"] == "mjpeg"
        size = plan.poster_size if name == "poster.jpg" else plan.thumb_size
        assert (stream["width"], stream["height"]) == size
    assert plan.poster_size == (720, 1280) and plan.thumb_size == (180, 320)
    thumbs = {(pictures / name).read_bytes() for name in names if name != "poster.jpg"}
    assert len(thumbs) == 5, "thumbnails at different instants must differ"


@pytest.mark.parametrize("name,code", [
    ("empty.mp4", errors.EMPTY_FILE),
    ("text.mp4", errors.NOT_A_VIDEO),
    ("image.mp4", errors.NOT_A_VIDEO),
    ("truncated.mp4", errors.UNREADABLE),
    ("audio-only.m4a", errors.NO_VIDEO_STREAM),
])
def test_bad_files_are_refused_at_probe(media, name, code):
    with pytest.raises(BadInput) as caught:
        probe_file(media.bad(name))
    assert caught.value.code == code
    assert len(caught.value.message) > 15


def test_file_cut_after_its_header_is_caught_by_the_encoder(media, tmp_path):
    path = media.bad("cut-faststart.mp4")
    source = probe_file(path)  # the header is intact, so probing succeeds
    rendition = plan_ladder(source.width, source.height, source.fps, source.has_audio).renditions[-1]
    with pytest.raises(BadInput) as caught:
        encode_rendition(str(path), str(tmp_path / "out"), source, rendition, EncoderSettings())
    assert caught.value.code == errors.UNREADABLE and "truncated" in caught.value.message


def test_decode_once_encodes_the_same_conformant_ladder(media, tmp_path):
    """build_multi_encode_command: one decode split to every rendition, measured like the per-rendition shape."""
    from vodflow.media.encode.process import run_ffmpeg
    from vodflow.media.encode.renditions import build_multi_encode_command, measure_output

    source = probe_file(media["portrait"])
    ladder = plan_ladder(source.width, source.height, source.fps, source.has_audio)
    hls_dir = tmp_path / "hls"
    for r in ladder.renditions:
        (hls_dir / r.name).mkdir(parents=True)
    args = build_multi_encode_command(str(media["portrait"]), str(hls_dir), source, list(ladder.renditions),
                                      EncoderSettings())
    assert args.count("-i") == 1
    assert run_ffmpeg(args, duration=source.duration, timeout=300).returncode == 0
    measured = [measure_output(str(hls_dir / r.name), r) for r in ladder.renditions]
    for r in ladder.renditions:
        (hls_dir / r.name / "index.m3u8").unlink()
    _, files = render_playlists(measured)
    for relative, text in files.items():
        (hls_dir / relative).write_text(text)
    report = check_tree(hls_dir, expected_duration=source.duration, expect_audio=True)
    assert report.ok, report.summary()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_scratch_disk_is_the_machines_fault_not_the_videos(media, tmp_path):
    """ffmpeg may even exit 0 after failed writes; the short output must not be blamed on the upload."""
    path = media["landscape"]
    source = probe_file(path)
    rendition = plan_ladder(source.width, source.height, source.fps, source.has_audio).renditions[0]
    full = tmp_path / "full"
    full.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(full)], check=True)  # noqa: S603
    try:
        with pytest.raises(MediaToolError) as caught:
            encode_rendition(str(path), str(full / "out"), source, rendition, EncoderSettings())
        assert not isinstance(caught.value, BadInput)
        assert "scratch disk is full" in str(caught.value)
    finally:
        subprocess.run(["umount", "-l", str(full)], check=False)  # noqa: S603
