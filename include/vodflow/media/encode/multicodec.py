"""The other codecs' renditions (AV1, HEVC) in the same ffmpeg command as the H.264 ladder: one decode, every codec.

Each AV1/HEVC rendition is a branch of the same decoded, constant-rate picture as the H.264 ones, scaled the same
way, with its keyframes forced on the same frames (``codec_options``), written as one fragmented MP4 (a fragment
per keyframe, no edit list: ``package.cmaf.VIDEO_FLAGS``), video only — the audio is the CMAF tree's shared AAC
tracks. ``package.cmaf.codec_track`` then cuts it on the H.264 rendition's segment grid and timeline.

An HDR source's renditions that keep HDR (``Rendition.dynamic_range`` PQ/HLG) branch off before the tone-map:
the decoded picture is split once, one branch tone-mapped for the SDR renditions (H.264 and the SDR ones of the
other codecs), the other given to ``hdr.hdr_picture`` for the HDR ones (10-bit, ``hdr.color_options``' tags).
No Airflow, S3 or database.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import ffmpeg

from vodflow.errors import MediaToolError
from vodflow.media.encode import hdr
from vodflow.media.encode.codec_options import cmaf_video_options, pixel_format
from vodflow.media.encode.codecs import H264, ffmpeg_for
from vodflow.media.encode.ffmpeg import STRIP_METADATA, normalize_picture, scaled, tonemapped
from vodflow.media.encode.ladder import Rendition
from vodflow.media.options import EncoderSettings
from vodflow.media.package import fmp4
from vodflow.media.package.cmaf import VIDEO_FLAGS
from vodflow.media.source.info import SourceInfo

Stream = ffmpeg.nodes.FilterableStream
ExtraOutputs = Callable[[Stream], list[ffmpeg.nodes.OutputStream]]
TRACK_FILE = "track.mp4"
# One fragmented MP4 per rendition: a fragment per keyframe, presentation times as encoded (no edit list).
CMAF_MUXER: dict[str, object] = {"f": "mp4", "use_editlist": 0, "movflags": VIDEO_FLAGS}


def codecs_of(renditions: Sequence[Rendition]) -> tuple[str, ...]:
    """The codecs of a command that encodes the H.264 ladder and ``renditions``: H.264 first."""
    return (H264, *dict.fromkeys(r.codec for r in renditions if r.codec != H264))


def binary_for(cmaf_renditions: Sequence[Rendition]) -> str:
    """The ffmpeg that encodes them (with the H.264 ladder): the system's for H.264 alone (``codecs.ffmpeg_for``)."""
    return ffmpeg_for(codecs_of(cmaf_renditions))


def track_path(root: str, name: str) -> str:
    """Where a whole-video encode writes a rendition's fragmented MP4: ``root/<name>/track.mp4``."""
    return os.path.join(root, name, TRACK_FILE)


def keeps_hdr(source: SourceInfo, rendition: Rendition) -> bool:
    return source.hdr and rendition.dynamic_range != hdr.SDR


def split_picture(video: Stream, count: int, extra_outputs: ExtraOutputs | None
                  ) -> tuple[ffmpeg.nodes.FilterNode, list[ffmpeg.nodes.OutputStream]]:
    """``count`` branches of the decoded picture for the renditions, plus what ``extra_outputs`` adds."""
    extra: list[ffmpeg.nodes.OutputStream] = []
    if extra_outputs is not None:
        # Built on a branch of its own; it adds nothing (an unused split output would stall the graph) or more.
        tee = video.filter_multi_output("split", count + 1)
        extra = extra_outputs(tee.stream(count))
        if extra:
            return tee, extra
    return video.filter_multi_output("split", count), extra


def picture_branches(video: Stream, source: SourceInfo, grid: Callable[[Stream], Stream], count: int,
                     cmaf_renditions: Sequence[Rendition], extra_outputs: ExtraOutputs | None
                     ) -> tuple[list[Stream], list[Stream], list[ffmpeg.nodes.OutputStream]]:
    """From the decoded source picture ``video``: ``count`` SDR branches for the H.264 renditions, one branch per
    other-codec rendition (HDR ones before the tone-map), and ``extra_outputs``' outputs (fed SDR). ``grid`` makes
    the constant-rate output picture (``ffmpeg.output_grid``, a chunk's ``trim``). Without other-codec renditions
    the graph is exactly the H.264 ladder's of before."""
    hdr_renditions = [r for r in cmaf_renditions if keeps_hdr(source, r)]
    sdr_count = count + len(cmaf_renditions) - len(hdr_renditions)
    hdr_branches: list[Stream] = []
    if hdr_renditions:
        both = normalize_picture(video, source, tonemap=False).filter_multi_output("split", 2)
        tee, extra = split_picture(grid(tonemapped(both.stream(0))), sdr_count, extra_outputs)
        hdr_tee = grid(hdr.hdr_picture(both.stream(1), source)).filter_multi_output("split", len(hdr_renditions))
        hdr_branches = [hdr_tee.stream(i) for i in range(len(hdr_renditions))]
    else:
        tee, extra = split_picture(grid(normalize_picture(video, source)), sdr_count, extra_outputs)
    sdr_branches = [tee.stream(i) for i in range(sdr_count)]
    ours, others = sdr_branches[:count], iter(sdr_branches[count:])
    hdr_iter = iter(hdr_branches)
    cmaf = [next(hdr_iter) if keeps_hdr(source, r) else next(others) for r in cmaf_renditions]
    return ours, cmaf, extra


def cmaf_output(branch: Stream, rendition: Rendition, source: SourceInfo, settings: EncoderSettings,
                keyframes: str, path: str, **extra: object) -> ffmpeg.nodes.OutputStream:
    """One AV1/HEVC rendition's output: scaled like the H.264 ones, its encoder, a fragmented MP4, no audio."""
    color = hdr.color_options(source, rendition.codec) if keeps_hdr(source, rendition) else None
    options = {**cmaf_video_options(rendition, settings, keyframes, color), **STRIP_METADATA, **CMAF_MUXER,
               "an": None, **extra}
    return scaled(branch, rendition, pixel_format(rendition)).output(path, **options)


def check_tracks(paths: dict[str, str]) -> None:
    """Every other-codec file was written and holds an init segment and a first keyframe fragment."""
    for name, path in paths.items():
        try:
            data = Path(path).read_bytes()
            info = fmp4.read_init(data)
            fragments = fmp4.read_fragments(data, info.init_size)
        except (OSError, ValueError) as exc:
            raise MediaToolError(f"{name}: ffmpeg wrote no readable fragmented MP4 ({exc})") from exc
        if not fragments or not fragments[0].sync:
            raise MediaToolError(f"{name}: the encode holds no fragment starting with a keyframe")
