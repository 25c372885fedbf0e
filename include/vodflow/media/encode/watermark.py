"""Watermarks: a PNG with alpha overlaid on every rendition in the same decode, and the checks on the image.

The mark is one more ffmpeg *input* (``png_pipe``, ``file`` protocol only: a local copy we made), never a ``movie``
filter (a file name inside a filter graph is a filter-injection risk), and every number in the graph is computed
here from validated floats and ints. The same input feeds each rendition's overlay (ffmpeg binds one input stream
to several filter-graph inputs; ``Overlays``), scaled for that rendition (``size`` × its width, aspect kept), its alpha
multiplied by ``opacity`` (``colorchannelmixer`` on one small frame: free), and overlaid after the rendition's
scale at the asked corner, ``margin`` × its width in from both edges. ``overlay``'s ``eof_action=repeat`` holds the
one PNG frame for the whole video (or chunk: the same place in every chunk, since the geometry depends only on the
rendition). No Airflow, S3 or database.
"""

from __future__ import annotations

import json
import struct
import subprocess
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import ffmpeg

from vodflow import errors
from vodflow.codec import Coded
from vodflow.errors import BadInput, MediaToolError

POSITIONS = ("top-left", "top-right", "bottom-left", "bottom-right")
MAX_BYTES = 2 * 1024 * 1024
MAX_SIDE = 4096
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ALPHA_PIX_FMTS = frozenset({"rgba", "rgba64be", "ya8", "ya16be", "pal8"})
# The mark's white on an HDR rendition: ITU-R BT.2408's graphics white (203 cd/m²), 58 % of the PQ signal and 75 %
# of HLG's. Its code values are scaled there (in the non-linear domain: exact for white, close for greys, colours
# approximate): left as they are, a white logo on a PQ rendition is 10,000 cd/m², the brightest a display can show.
GRAPHICS_WHITE = {"PQ": 0.58, "HLG": 0.75}
PROBE_TIMEOUT = 30.0

Stream = ffmpeg.nodes.FilterableStream


@dataclass(frozen=True)
class Watermark(Coded):
    """A checked mark: ``path`` a local PNG we copied (set on the worker), ``image`` its key in our bucket, the
    image's pixel size, and the request's placement."""

    width: int
    height: int
    position: str = "bottom-right"
    margin: float = 0.03  # of the rendition's width, from both edges of the corner
    size: float = 0.12  # the mark's width, of the rendition's width
    opacity: float = 1.0
    poster: bool = False  # on the poster and thumbnails too
    image: str = ""  # key of our copy in the bucket
    path: str = ""  # local file the encode reads


@dataclass(frozen=True)
class Placement:
    """Where one mark goes on one picture of ``frame`` size, in whole (even) pixels."""

    x: int
    y: int
    width: int
    height: int


def _even(value: float, least: int = 2) -> int:
    return max(least, 2 * round(value / 2))


def placement(mark: Watermark, frame_width: int, frame_height: int) -> Placement:
    """The mark's box on a ``frame_width`` × ``frame_height`` picture: ``size`` of the width, the image's aspect
    kept, shrunk to fit the height between the margins (a tall mark on a portrait video), ``margin`` of the width
    in from both edges of its corner. Even numbers, so the 4:2:0 chroma of the box lines up with the luma."""
    margin = 2 * round(mark.margin * frame_width / 2)
    width = _even(mark.size * frame_width)
    height = _even(width * mark.height / mark.width)
    room = frame_height - 2 * margin
    if height > room:
        height = _even(room, 2)
        width = _even(height * mark.width / mark.height)
    x = margin if mark.position.endswith("left") else frame_width - width - margin
    y = margin if mark.position.startswith("top") else frame_height - height - margin
    return Placement(x=max(0, x), y=max(0, y), width=width, height=height)


def mark_input(mark: Watermark) -> Stream:
    """The mark's one frame: the local PNG we checked and copied, read as a PNG and nothing else."""
    return ffmpeg.input(mark.path, f="png_pipe", protocol_whitelist="file")["v:0"]


def mark_picture(mark: Watermark, box: Placement, flags: str = "lanczos") -> Stream:
    """The mark at its size on a picture, RGBA."""
    return mark_input(mark).filter("scale", box.width, box.height, flags=flags).filter("format", "rgba")


def toned(picture: Stream, mark: Watermark, level: float = 1.0) -> Stream:
    """``picture`` (the mark) with its alpha multiplied by the opacity and its colours by ``level``."""
    gains = {"aa": mark.opacity} if mark.opacity < 1.0 else {}
    if level != 1.0:
        gains.update(rr=level, gg=level, bb=level)
    return picture.filter("colorchannelmixer", **{k: f"{v:.4f}" for k, v in gains.items()}) if gains else picture


def _overlay(video: Stream, picture: Stream, box: Placement, pix_fmt: str) -> Stream:
    return video.overlay(picture, x=box.x, y=box.y, eof_action="repeat",
                         format="yuv420p10" if "10" in pix_fmt else "yuv420")


class Overlays:
    """The marks of one ffmpeg command. Renditions of the same size (H.264 360p and AV1 360p) get one scaled mark,
    split between them: ffmpeg-python merges identical filter chains into one node, which cannot feed two."""

    def __init__(self, marks: Sequence[Watermark], pictures: Iterable[tuple[int, int, str]]) -> None:
        """``pictures``: every rendition's (width, height, dynamic range) the command will mark."""
        self.marks = tuple(marks)
        counts = Counter((mark, (width, height)) for mark in self.marks for width, height, _ in pictures)
        self._streams: dict[tuple[Watermark, tuple[int, int]], Iterator[Stream]] = {}
        for (mark, (width, height)), count in counts.items():
            picture = mark_picture(mark, placement(mark, width, height))
            split = picture.filter_multi_output("split", count) if count > 1 else None
            self._streams[(mark, (width, height))] = iter(
                [split.stream(i) for i in range(count)] if split else [picture])

    def on(self, video: Stream, width: int, height: int, pix_fmt: str = "yuv420p", dynamic_range: str = "SDR"
           ) -> Stream:
        """``video`` (``width`` × ``height``, ``pix_fmt``, already scaled) with every mark, in order (an imposed
        mark first, the request's above it); unchanged without marks. Once per picture named in ``pictures``.
        An HDR rendition's mark has its white at ``GRAPHICS_WHITE``."""
        if not self.marks:
            return video
        for mark in self.marks:
            picture = toned(next(self._streams[(mark, (width, height))]), mark,
                            GRAPHICS_WHITE.get(dynamic_range, 1.0))
            video = _overlay(video, picture, placement(mark, width, height), pix_fmt)
        return video.filter("format", pix_fmt)


def on_pictures(video: Stream, marks: Sequence[Watermark], width: int, height: int) -> Stream:
    """The pictures' branch (the decoded picture, ``width`` × ``height``) with the marks that ask for the poster
    (``poster: true``), placed as on a rendition of that size: the poster and thumbnails scale it down as a
    whole, so the mark keeps its relative size and place. Unchanged when none asks. Its mark is scaled
    ``bicubic``, a chain of its own (never merged with a rendition's of the same size: see ``Overlays``)."""
    asked = [m for m in marks if m.poster]
    for mark in asked:
        box = placement(mark, width, height)
        video = _overlay(video, toned(mark_picture(mark, box, flags="bicubic"), mark), box, "yuv420p")
    return video.filter("format", "yuv420p") if asked else video


# Checks on the image --------------------------------------------------------------------------------------
def refused(reason: str) -> BadInput:
    return BadInput(errors.INVALID_REQUEST, f"Invalid request: watermark: {reason}.")


def check_header(head: bytes) -> tuple[int, int]:
    """(width, height) from the PNG's IHDR — before anything decodes it (a 60000 × 60000 PNG of a few KB would
    decode to 14 GB) — or BadInput: not a PNG, too many pixels, no alpha channel (colour type 4 or 6, or a
    palette with a ``tRNS`` chunk)."""
    if not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR" or len(head) < 33:
        kind = "a JPEG" if head.startswith(b"\xff\xd8\xff") else "not a PNG"
        raise refused(f"the image is {kind}; a watermark must be a PNG with an alpha channel")
    width, height, _depth, colour = struct.unpack(">IIBB", head[16:26])
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise refused(f"the image is {width}x{height} pixels; at most {MAX_SIDE}x{MAX_SIDE}")
    if colour not in (4, 6) and not (colour == 3 and b"tRNS" in head):
        raise refused("the PNG has no alpha channel (transparency); export it as RGBA")
    return width, height


def check_size(size: int) -> None:
    if size > MAX_BYTES:
        raise refused(f"the image is {size / 1048576:.1f} MiB; at most {MAX_BYTES // 1048576} MiB")


def probe_image(path: str, ffprobe: str = "ffprobe") -> tuple[int, int]:
    """ffprobe's word on the local copy (its header already passed ``check_header``): one PNG stream whose pixel
    format has alpha, of the size the header said."""
    args = [ffprobe, "-v", "error", "-hide_banner", "-f", "png_pipe", "-protocol_whitelist", "file",
            "-show_entries", "stream=codec_name,pix_fmt,width,height", "-of", "json", path]
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=PROBE_TIMEOUT, check=False)  # noqa: S603
    except subprocess.TimeoutExpired as exc:
        raise MediaToolError("ffprobe did not read the watermark in time") from exc
    streams = json.loads(out.stdout or "{}").get("streams") or [] if out.returncode == 0 else []
    if len(streams) != 1 or streams[0].get("codec_name") != "png":
        raise refused("the image is not a PNG ffmpeg can read")
    if streams[0].get("pix_fmt") not in ALPHA_PIX_FMTS:
        raise refused(f"the PNG has no alpha channel (pixel format {streams[0].get('pix_fmt')})")
    return int(streams[0]["width"]), int(streams[0]["height"])

