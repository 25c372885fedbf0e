"""Other codecs beside H.264: an H.264-only request builds exactly the commands it did before them (so its TS tree
is byte-identical), and the codec strings of real AV1/HEVC init segments are what their streams are."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from vodflow.media.encode.chunks import Chunk, build_chunk_command
from vodflow.media.encode.codecs import codec_ladder, modern_ffmpeg
from vodflow.media.encode.ladder import plan_ladder
from vodflow.media.encode.renditions import build_encode_command, build_multi_encode_command
from vodflow.media.options import EncoderSettings
from vodflow.media.package import fmp4
from vodflow.media.package.cmaf import VIDEO_FLAGS
from vodflow.media.source.info import SourceInfo

# The argument lists main built before the other codecs were encoded (commit f0b4e85: 0d66132's, and for an HDR
# source the tone-map's side-data deletes, which leave ffmpeg 5.1's output byte-identical) for these sources.
REFERENCE = Path(__file__).parent / "data" / "h264_only_commands.json"


def source(**changes) -> SourceInfo:
    base = dict(duration=12.0, width=1280, height=720, fps="30000/1001", vfr=False, video_codec="h264",
                pix_fmt="yuv420p", bit_depth=8, hdr=False, interlaced=False, rotation=0, has_audio=True,
                audio_codec="aac", audio_channels=2, format_name="mov,mp4", size_bytes=1, bitrate=1)
    return SourceInfo(**{**base, **changes})


def commands(**cmaf) -> dict[str, list[str]]:
    out = {}
    for label, src in (("sdr", source()), ("hdr", source(hdr=True, interlaced=True, bit_depth=10))):
        ladder = list(plan_ladder(src.width, src.height, src.fps, src.has_audio).renditions)
        settings = EncoderSettings(threads=2)
        out[f"{label}-multi"] = build_multi_encode_command("/in/src.mp4", "/out/hls", src, ladder, settings, **cmaf)
        out[f"{label}-chunk"] = build_chunk_command("/in/src.mp4", "/out/work", src, Chunk(1, 6.0, 180, 180), ladder,
                                                    settings, **cmaf)
        out[f"{label}-single"] = build_encode_command("/in/src.mp4", "/out/hls/720p", src, ladder[0], settings)
    return out


def test_an_h264_only_run_builds_the_commands_of_before():
    reference = json.loads(REFERENCE.read_text())
    assert commands() == reference
    assert commands(cmaf_renditions=[]) == reference


def test_other_codecs_join_the_same_decode_with_the_modern_ffmpeg():
    src = source()
    ladder = plan_ladder(src.width, src.height, src.fps, src.has_audio).renditions
    others = [*codec_ladder(ladder, "av1"), *codec_ladder(ladder, "hevc")]
    args = build_multi_encode_command("/in/src.mp4", "/out/hls", src, list(ladder), EncoderSettings(threads=2),
                                      cmaf_renditions=others, cmaf_root="/out/codecs")
    assert args[0] == modern_ffmpeg() and args.count("-i") == 1
    assert args.count("libsvtav1") == args.count("libx265") == len(ladder)
    assert "/out/codecs/av1-720p/track.mp4" in args
    graph = args[args.index("-filter_complex") + 1]
    assert f"split={2 * len(ladder) + len(ladder)}" in graph  # one decoded picture for every rendition
    h264_keyframes = args[args.index("-force_key_frames") + 1]
    assert {args[i + 1] for i, a in enumerate(args) if a == "-force_key_frames"} == {h264_keyframes}
    # The encoders' own thread settings (they ignore -threads).
    assert {args[i + 1] for i, a in enumerate(args) if a == "-svtav1-params"} == {"irefresh-type=2:scd=0:lp=2"}
    assert all(":pools=2" in args[i + 1] for i, a in enumerate(args) if a == "-x265-params")


def encode_init(tmp_path: Path, name: str, *codec_args: str) -> bytes:
    """A fragmented MP4 of a few frames, as the pipeline muxes one; its bytes."""
    out = tmp_path / f"{name}.mp4"
    subprocess.run([modern_ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y",  # noqa: S603
                    "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-frames:v", "3", *codec_args,
                    "-f", "mp4", "-use_editlist", "0", "-movflags", VIDEO_FLAGS, str(out)], check=True)
    return out.read_bytes()


# ffmpeg 9 takes the colour properties from the frames (the encoder options are not applied to them).
HDR_TAGS = ("-vf", "setparams=color_primaries=bt2020:color_trc=smpte2084:colorspace=bt2020nc")


@pytest.mark.parametrize("name,args,expected", [
    ("av1-sdr", ("-c:v", "libsvtav1", "-preset", "12", "-pix_fmt", "yuv420p"), "av01.0.00M.08"),
    ("av1-bt709", ("-c:v", "libsvtav1", "-preset", "12", "-pix_fmt", "yuv420p", "-vf",
                   "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709"), "av01.0.00M.08"),
    ("av1-pq", ("-c:v", "libsvtav1", "-preset", "12", "-pix_fmt", "yuv420p10le", *HDR_TAGS),
     "av01.0.00M.10.0.110.09.16.09.0"),
    ("av1-full-range", ("-c:v", "libsvtav1", "-preset", "12", "-pix_fmt", "yuv420p", "-vf",
                        "setparams=range=pc:color_primaries=bt709:color_trc=bt709:colorspace=bt709"),
     "av01.0.00M.08.0.110.01.01.01.1"),
    ("hevc-main", ("-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1", "-pix_fmt", "yuv420p",
                   "-x265-params", "log-level=error"), "hvc1.1.6.L60.90"),
    ("hevc-main10", ("-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1", "-pix_fmt", "yuv420p10le",
                     *HDR_TAGS, "-x265-params", "log-level=error"), "hvc1.2.4.L60.90"),
    ("hev1", ("-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hev1", "-x265-params", "log-level=error"),
     "hev1.1.6.L60.90"),
])
def test_codec_strings_of_real_init_segments(tmp_path, name, args, expected):
    assert fmp4.read_init(encode_init(tmp_path, name, *args)).codec == expected


def test_an_avc_init_segment_reads_as_before(tmp_path):
    data = encode_init(tmp_path, "avc", "-c:v", "libx264", "-profile:v", "high", "-pix_fmt", "yuv420p")
    assert fmp4.read_init(data).codec == "avc1.64000c"  # High, level 1.2


def test_av1_is_capped_crf_per_rung_and_hevc_constrained_vbr():
    """bench/codecs.py: AV1 at a CRF per rung under the H.264 rung's average rate; HEVC VBR at 0.65x."""
    from vodflow.media.encode.codec_options import av1_crf, cmaf_video_options
    from vodflow.media.encode.codecs import codec_ladder
    from vodflow.media.encode.ladder import plan_ladder
    from vodflow.media.options import EncoderSettings

    h264 = plan_ladder(1920, 1080, "30", True).renditions
    av1 = codec_ladder(h264, "av1")
    assert [av1_crf(r.width, r.height) for r in av1] == [41, 25, 32, 34]
    top = cmaf_video_options(av1[0], EncoderSettings(), "expr:gte(t,n_forced*2)")
    assert top["crf"] == 41 and abs(int(top["maxrate"][:-1]) - h264[0].video_kbps) <= 30  # ≈ the H.264 average
    assert "b:v" not in top  # SVT-AV1 takes a maximum rate only in CRF mode
    hevc = cmaf_video_options(codec_ladder(h264, "hevc")[0], EncoderSettings(), "expr:gte(t,n_forced*2)")
    assert (hevc["preset"], hevc["b:v"], hevc["maxrate"]) == ("superfast", "3900k", "5850k")
