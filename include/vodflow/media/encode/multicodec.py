"""The other codecs' renditions (AV1, HEVC) in the same ffmpeg command as the H.264 ladder: one decode, every codec.

Each AV1/HEVC rendition is a branch of the same decoded, constant-rate picture as the H.264 ones, scaled the same
way, with its keyframes forced on the same frames (``codec_options``), written as one fragmented MP4 (a fragment
per keyframe, no edit list: ``package.cmaf.VIDEO_FLAGS``), video only — the audio is the CMAF tree's shared AAC
tracks. ``package.cmaf.codec_track`` then cuts it on the H.264 rendition's segment grid and timeline.

An HDR source's renditions that keep HDR (``Rendition.dynamic_range`` PQ/HLG) branch off before the tone-map
(``hdr.split_dynamic_range``: one deinterlace and frame grid, only the SDR branch tone-mapped): the SDR picture
feeds H.264, the pictures and the other codecs' SDR renditions; the HDR one (10-bit) the HDR renditions, encoded
with ``hdr.color_options``. ffmpeg 9 writes the ``mdcv``/``clli`` boxes for one branch of a split at most, so
``finish_tracks`` gives every HDR rendition's init segment the source's (``package.hdr_boxes``).
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
from vodflow.media.encode.ffmpeg import STRIP_METADATA, normalize_picture, output_grid, scaled
from vodflow.media.encode.ladder import Rendition
from vodflow.media.encode.watermark import Overlays, Watermark
from vodflow.media.options import EncoderSettings
from vodflow.media.package import fmp4
from vodflow.media.package.cmaf import VIDEO_FLAGS
from vodflow.media.package.hdr_boxes import with_hdr_boxes
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


def picture_branches(video: Stream, source: SourceInfo, fps: str, count: int, cmaf_renditions: Sequence[Rendition],
                     extra_outputs: ExtraOutputs | None, *, from_zero: bool = True,
                     window: dict[str, int] | None = None
                     ) -> tuple[list[Stream], list[Stream], list[ffmpeg.nodes.OutputStream]]:
    """From the decoded source picture ``video``: ``count`` SDR branches for the H.264 renditions, one branch per
    other-codec rendition (an HDR one from ``hdr.split_dynamic_range``'s HDR picture, never tone-mapped), and
    ``extra_outputs``' outputs (fed SDR). Every branch is on the output grid (``ffmpeg.output_grid``: ``fps``,
    ``from_zero``), cut to a chunk's ``window`` (``trim``'s ``start_pts``/``end_pts``) when given. Without an HDR
    rendition the graph is exactly the H.264 ladder's of before (so an H.264-only command is unchanged)."""
    def cut(picture: Stream) -> Stream:
        return picture.filter("trim", **window) if window is not None else picture

    wanted = [r for r in cmaf_renditions if keeps_hdr(source, r)]
    sdr, hdr_picture = (hdr.split_dynamic_range(video, source, fps, from_zero=from_zero) if wanted
                        else (output_grid(normalize_picture(video, source), fps, from_zero=from_zero), None))
    hdr_renditions = wanted if hdr_picture is not None else []
    sdr_count = count + len(cmaf_renditions) - len(hdr_renditions)
    tee, extra = split_picture(cut(sdr), sdr_count, extra_outputs)
    sdr_branches = [tee.stream(i) for i in range(sdr_count)]
    hdr_branches: list[Stream] = []
    if hdr_picture is not None:
        hdr_tee = cut(hdr_picture).filter_multi_output("split", len(hdr_renditions))
        hdr_branches = [hdr_tee.stream(i) for i in range(len(hdr_renditions))]
    others, kept = iter(sdr_branches[count:]), iter(hdr_branches)
    cmaf = [next(kept) if r in hdr_renditions else next(others) for r in cmaf_renditions]
    return sdr_branches[:count], cmaf, extra


def cmaf_output(branch: Stream, rendition: Rendition, source: SourceInfo, settings: EncoderSettings,
                keyframes: str, path: str, marks: Overlays | None = None, **extra: object
                ) -> ffmpeg.nodes.OutputStream:
    """One AV1/HEVC rendition's output: scaled (and watermarked) like the H.264 ones, its encoder, a fragmented
    MP4, no audio."""
    color = hdr.color_options(source, rendition.codec) if keeps_hdr(source, rendition) else None
    options = {**cmaf_video_options(rendition, settings, keyframes, color), **STRIP_METADATA, **CMAF_MUXER,
               "an": None, **extra}
    pix_fmt = pixel_format(rendition)
    picture = scaled(branch, rendition, pix_fmt)
    if marks is not None:
        width, height, dynamic_range = mark_picture_of(source, rendition)
        picture = marks.on(picture, width, height, pix_fmt, dynamic_range)
    return picture.output(path, **options)


def mark_picture_of(source: SourceInfo, rendition: Rendition) -> tuple[int, int, str]:
    """What a watermark is drawn for on this rendition: its size and the dynamic range it keeps."""
    return rendition.width, rendition.height, rendition.dynamic_range if keeps_hdr(source, rendition) else hdr.SDR


def overlays_for(marks: Sequence[Watermark], source: SourceInfo, renditions: Sequence[Rendition]) -> Overlays:
    """The watermarks of one command that encodes ``renditions`` (every codec's)."""
    return Overlays(marks, [mark_picture_of(source, r) for r in renditions])


def finish_tracks(paths: dict[str, str], renditions: Sequence[Rendition], source: SourceInfo) -> None:
    """Every other-codec file (rendition name → path) was written and holds an init segment and a first keyframe
    fragment; an HDR rendition's gets the source's ``mdcv``/``clli`` boxes where ffmpeg left them out."""
    hdr_names = {r.name for r in renditions if keeps_hdr(source, r)}
    for name, path in paths.items():
        try:
            data = Path(path).read_bytes()
            if name in hdr_names and (source.mastering_display or source.content_light):
                boxed = with_hdr_boxes(data, source.mastering_display, source.content_light)
                if boxed != data:
                    Path(path).write_bytes(boxed)
                    data = boxed
            info = fmp4.read_init(data)
            fragments = fmp4.read_fragments(data, info.init_size)
        except (OSError, ValueError) as exc:
            raise MediaToolError(f"{name}: ffmpeg wrote no readable fragmented MP4 ({exc})") from exc
        if not fragments or not fragments[0].sync:
            raise MediaToolError(f"{name}: the encode holds no fragment starting with a keyframe")
