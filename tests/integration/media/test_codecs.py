"""AV1 and HEVC renditions beside the H.264 ladder, from one decode, on real encodes: every codec's CMAF track has
its keyframes on the H.264 ladder's frames, its segments on the H.264 grid and timeline, the codec string its
init segment implies (checked against ffprobe), for a whole video and for a chunked one (29.97 fps, seams)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import pytest

from vodflow.devtools.samples import SampleSpec, make_hdr_sample, make_sample
from vodflow.media.encode.chunks import encode_chunk, join_rendition, plan_chunks
from vodflow.media.encode.codecs import codec_ladder
from vodflow.media.encode.ladder import plan_ladder
from vodflow.media.encode.multicodec import track_path
from vodflow.media.encode.renditions import encode_renditions
from vodflow.media.measured import MeasuredRendition
from vodflow.media.options import EncoderSettings
from vodflow.media.package import fmp4
from vodflow.media.package.cmaf import CmafTrack, codec_track, join_pieces
from vodflow.media.package.mpegts import PTS_HZ, index_segment
from vodflow.media.source.inputs import FILE_PROTOCOLS
from vodflow.media.source.probe import probe

pytestmark = pytest.mark.integration
CODEC_NAMES = {"av1": "av1", "hevc": "hevc"}


def probed(path: Path):
    return probe(str(path), path.stat().st_size, path.read_bytes()[:4096], protocols=FILE_PROTOCOLS)


def ffprobe(path: Path, *args: str) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", *args, "-of", "json", str(path)],  # noqa: S603
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def ladder_of(source, small: bool = True):
    """The planned ladder, plus a small rung below it (two rungs per codec, at little cost)."""
    ladder = list(plan_ladder(source.width, source.height, source.fps, source.has_audio).renditions)
    if small:
        ladder.append(replace(ladder[-1], name="144p", width=256, height=144, video_kbps=200, maxrate_kbps=300,
                              bufsize_kbits=400))
    return ladder


def ts_keyframes(folder: Path, measured: MeasuredRendition) -> tuple[list[Fraction], int]:
    """The H.264 rendition's keyframe presentation times (seconds, exact) and its frame count."""
    times, frames = [], 0
    for segment in measured.segments:
        index = index_segment((folder / segment.uri).read_bytes())
        frames += len(index.pes)
        times += [Fraction(p.pts, PTS_HZ) for p in index.pes if p.keyframe]
    return times, frames


def track_facts(folder: Path, track: CmafTrack) -> tuple[list[Fraction], int, list[fmp4.Fragment]]:
    """A CMAF track's keyframe presentation times (every fragment starts with one), frame count, fragments."""
    data = b"".join((folder / name).read_bytes() for name in ["init.mp4", *(s.uri for s in track.segments)])
    info = fmp4.read_init(data)
    fragments = fmp4.read_fragments(data, info.init_size)
    times = [Fraction(f.decode_time + f.composition_offset, info.timescale) for f in fragments]
    return times, sum(f.samples for f in fragments), fragments


def check_codec_track(folder: Path, track: CmafTrack, codec: str, grid: MeasuredRendition, grid_dir: Path,
                      tmp: Path) -> None:
    frame = Fraction(1) / Fraction(grid.frame_rate)
    h264_keys, h264_frames = ts_keyframes(grid_dir, grid)
    keys, frames, fragments = track_facts(folder, track)
    assert keys == h264_keys, f"{track.name}: keyframes not on the H.264 ladder's frames"
    assert frames == h264_frames
    assert all(f.sync for f in fragments)
    for before, after in pairwise(fragments):  # no gap, no overlap
        assert before.decode_time + before.duration == after.decode_time
    assert len(track.segments) == len(grid.segments)
    for ours, theirs in zip(track.segments, grid.segments, strict=True):
        assert abs(ours.duration - theirs.duration) <= float(frame) + 1e-6
    assert Fraction(track.first_time, track.timescale) == Fraction(grid.first_pts, PTS_HZ)  # the TS timeline
    if codec == "av1":  # ffprobe agrees (its mov reader shifts the times of tracks with B-frames: not AV1's)
        whole = tmp / f"{track.name}-whole.mp4"
        whole.write_bytes(b"".join((folder / n).read_bytes() for n in ["init.mp4", *(s.uri for s in track.segments)]))
        ts = [t for s in grid.segments for t in keyframe_times(grid_dir / s.uri)]
        assert keyframe_times(whole) == pytest.approx(ts, abs=1e-5)
    init = (folder / "init.mp4").read_bytes()
    for segment in track.segments[:1]:
        probe_path = tmp / f"{track.name}-{segment.uri}.mp4"
        probe_path.write_bytes(init + (folder / segment.uri).read_bytes())
        stream = ffprobe(probe_path, "-show_streams")["streams"][0]
        assert stream["codec_name"] == CODEC_NAMES[codec]
        assert stream["pix_fmt"] == "yuv420p"  # 8-bit SDR
        assert (stream["width"], stream["height"]) == (track.width, track.height)
        packets = ffprobe(probe_path, "-select_streams", "v", "-show_entries", "packet=flags")["packets"]
        assert packets[0]["flags"].startswith("K")
        assert track.codec == implied_codec_string(codec, stream)


def keyframe_times(path: Path) -> list[float]:
    packets = ffprobe(path, "-select_streams", "v", "-show_entries", "packet=pts_time,flags")["packets"]
    return [float(p["pts_time"]) for p in packets if p["flags"].startswith("K")]


def implied_codec_string(codec: str, stream: dict) -> str:
    """The RFC 6381 string ffprobe's profile and level imply for our 8-bit 4:2:0 SDR encodes."""
    if codec == "av1":
        assert stream["profile"] == "Main"
        return f"av01.0.{stream['level']:02d}M.08"
    assert stream["profile"] == "Main"
    return f"hvc1.1.6.L{stream['level']}.90"  # Main, main tier, progressive + frame-only constraints


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    root = tmp_path_factory.mktemp("codecs-whole")
    path = root / "src.mp4"
    make_sample(str(path), SampleSpec(640, 360, 8.0, "30000/1001", audio=True))
    source = probed(path)
    ladder = ladder_of(source)
    others = [*codec_ladder(tuple(ladder), "av1"), *codec_ladder(tuple(ladder), "hevc")]
    measured = encode_renditions(str(path), str(root / "hls"), source, ladder, EncoderSettings(),
                                 cmaf_renditions=others, cmaf_root=str(root / "codecs"))
    tracks = {r.name: codec_track(track_path(str(root / "codecs"), r.name), _mkdir(root / "cmaf" / r.name), r,
                                  measured[0])
              for r in others}
    return root, measured, others, tracks


def _mkdir(path: Path) -> str:
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def test_every_codec_from_one_decode_on_the_h264_grid(whole, tmp_path):
    root, measured, others, tracks = whole
    assert [m.name for m in measured] == ["360p", "144p"]  # the TS tree is H.264's alone
    assert not list((root / "hls").glob("*-*p"))
    for rendition in others:
        track = tracks[rendition.name]
        assert (track.width, track.height) == (rendition.width, rendition.height)
        check_codec_track(root / "cmaf" / rendition.name, track, rendition.codec, measured[0],
                          root / "hls" / measured[0].name, tmp_path)


def test_codec_bitrates_follow_their_ladder(whole):
    _, measured, others, tracks = whole
    h264 = {m.name: m.bytes for m in measured}
    for rendition in others:
        rung = rendition.name.split("-", 1)[1]
        assert tracks[rendition.name].bytes < h264[rung], f"{rendition.name} is not smaller than H.264's {rung}"


def test_chunked_codecs_join_without_seams(tmp_path):
    """Two chunks at 29.97 fps (899/900-frame chunks): each codec's pieces joined by stream copy have every frame
    once, on the H.264 ladder's keyframes and segment grid."""
    path = tmp_path / "src.mp4"
    make_sample(str(path), SampleSpec(320, 180, 13.0, "30000/1001", audio=False))
    source = probed(path)
    ladder = ladder_of(source, small=False)
    others = [*codec_ladder(tuple(ladder), "av1"), *codec_ladder(tuple(ladder), "hevc")]
    settings = EncoderSettings()
    chunks = plan_chunks(source.duration, source.fps, 6, settings.segment_seconds)
    assert len(chunks) == 2
    work = tmp_path / "work"
    pieces = [encode_chunk(str(path), str(work), source, chunk, ladder, settings, cmaf_renditions=others)
              for chunk in chunks]
    top = ladder[0]
    measured = join_rendition([p[top.name] for p in pieces], None, str(tmp_path / "hls" / top.name), top, settings)
    for rendition in others:
        joined = tmp_path / f"{rendition.name}.mp4"
        join_pieces([p[rendition.name] for p in pieces], str(joined), [c.first_frame for c in chunks],
                    rendition.fps)
        folder = Path(_mkdir(tmp_path / "cmaf" / rendition.name))
        track = codec_track(str(joined), str(folder), rendition, measured)
        check_codec_track(folder, track, rendition.codec, measured, tmp_path / "hls" / top.name, tmp_path)


def test_hdr_renditions_branch_off_before_the_tone_map(tmp_path):
    """An HDR10 source: the H.264 ladder (and an SDR rendition of another codec) is tone-mapped to BT.709 8-bit; the
    renditions that keep HDR are taken from the picture before the tone-map, 10-bit, BT.2020/PQ, and each one's init
    segment has the mastering display and content light boxes (ffmpeg 9 writes them for one split branch at most),
    on its CMAF track too, which says PQ."""
    path = Path(make_hdr_sample(str(tmp_path / "pq.mp4"), width=320, height=180, duration=2.5, audio=False))
    source = probed(path)
    assert source.hdr and source.mastering_display and source.content_light
    ladder = ladder_of(source)
    others = [*codec_ladder(tuple(ladder), "av1", "PQ"), *codec_ladder(tuple(ladder), "hevc", "SDR")]
    measured = encode_renditions(str(path), str(tmp_path / "hls"), source, ladder, EncoderSettings(),
                                 cmaf_renditions=others, cmaf_root=str(tmp_path / "codecs"))

    def colours(file: Path) -> tuple[str, str, str]:
        stream = ffprobe(file, "-select_streams", "v", "-show_streams")["streams"][0]
        return stream["pix_fmt"], stream.get("color_primaries"), stream.get("color_transfer")

    assert colours(tmp_path / "hls" / ladder[0].name / "seg_00000.ts") == ("yuv420p", "bt709", "bt709")
    for rendition in others:
        file = Path(track_path(str(tmp_path / "codecs"), rendition.name))
        data = file.read_bytes()
        if rendition.codec == "hevc":
            assert colours(file) == ("yuv420p", "bt709", "bt709")
            assert b"mdcv" not in data[:fmp4.read_init(data).init_size]
            continue
        assert colours(file) == ("yuv420p10le", "bt2020", "smpte2084")
        init = data[:fmp4.read_init(data).init_size]
        assert b"mdcv" in init and b"clli" in init, rendition.name
        folder = Path(_mkdir(tmp_path / "cmaf" / rendition.name))
        track = codec_track(str(file), str(folder), rendition, measured[0])
        codec = track.codec.split(".")
        assert codec[3] == "10" and codec[6:] == ["09", "16", "09", "0"]  # 10-bit; BT.2020, PQ, BT.2020 NCL
        assert (track.video_range, track.colour) == ("PQ", (9, 16, 9))
