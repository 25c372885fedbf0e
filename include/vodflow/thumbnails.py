"""A poster frame and evenly spaced thumbnails.

Each picture is one short ffmpeg run that seeks in the source (through a presigned URL, so only the bytes
around each instant are fetched) instead of decoding the whole video. The poster uses ffmpeg's ``thumbnail``
filter, which picks the most representative of a few keyframes, so a fade or a black frame is not the poster.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import ffmpeg

from vodflow.encode import classify_failure, normalize_picture
from vodflow.errors import MediaToolError
from vodflow.ladder import fit_within
from vodflow.probe import ALLOWED_DEMUXERS, HTTP_PROTOCOLS, SourceInfo
from vodflow.process import run_ffmpeg

POSTER_BOX = (1280, 720)
THUMB_BOX = (320, 180)
MAX_THUMBNAILS = 10
POSTER_CANDIDATES = 5  # keyframes the poster is chosen from
PICTURE_TIMEOUT = 120.0
PICTURE_NICENESS = 10


@dataclass(frozen=True)
class Picture:
    filename: str
    at: float
    width: int
    height: int


def poster_time(duration: float) -> float:
    return round(min(duration * 0.1, 10.0), 3)


def thumbnail_times(duration: float, count: int = MAX_THUMBNAILS) -> list[float]:
    count = max(1, min(count, int(duration // 2) or 1))
    return [round((i + 0.5) * duration / count, 3) for i in range(count)]


def picture_command(url: str, at: float, out_path: str, source: SourceInfo, box: tuple[int, int],
                    representative: bool, protocols: str, keyframe_only: bool = True) -> list[str]:
    width, height = fit_within(source.width, source.height, *box)
    if representative:
        # The poster is chosen among a few keyframes from the one at or before ``at``: only those are decoded.
        stream = ffmpeg.input(url, ss=at, skip_frame="nokey", noaccurate_seek=None, protocol_whitelist=protocols,
                              format_whitelist=ALLOWED_DEMUXERS)
        video = normalize_picture(stream["v:0"], source).filter("thumbnail", POSTER_CANDIDATES)
    elif keyframe_only:
        # The keyframe at or before ``at``: one decoded frame, whatever the source's GOP length.
        stream = ffmpeg.input(url, ss=at, skip_frame="nokey", noaccurate_seek=None, protocol_whitelist=protocols,
                              format_whitelist=ALLOWED_DEMUXERS)
        video = normalize_picture(stream["v:0"], source)
    else:
        # Exact: decodes from the previous keyframe up to ``at`` (half a GOP on average).
        stream = ffmpeg.input(url, ss=at, protocol_whitelist=protocols, format_whitelist=ALLOWED_DEMUXERS)
        video = normalize_picture(stream["v:0"], source)
    video = video.filter("scale", width, height, flags="lanczos").filter("setsar", 1)
    output = ffmpeg.output(video, out_path, **{"frames:v": 1, "q:v": 3, "map_metadata": -1, "update": 1})
    return ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "error", *output.get_args()]


def _render(url: str, at: float, path: str, source: SourceInfo, box: tuple[int, int], representative: bool,
            protocols: str, keyframe_only: bool) -> bool:
    # Pictures are only needed by publish, after the encodes: they yield the CPU to them.
    result = run_ffmpeg(picture_command(url, at, path, source, box, representative, protocols, keyframe_only),
                        timeout=PICTURE_TIMEOUT, redact=url, niceness=PICTURE_NICENESS)
    if result.returncode != 0:
        raise classify_failure(result, os.path.dirname(path))
    return os.path.exists(path)


def make_pictures(url: str, source: SourceInfo, out_dir: str, *,
                  protocols: str = HTTP_PROTOCOLS) -> list[Picture]:
    """poster.jpg plus 001.jpg... in ``out_dir``.

    Pictures come from keyframes (one decoded frame each). When the source's keyframes are further apart than
    the thumbnails, neighbours land on the same keyframe: those are made again from the exact instant.
    """
    os.makedirs(out_dir, exist_ok=True)
    plan = [("poster.jpg", poster_time(source.duration), POSTER_BOX, True)]
    plan += [(f"{i:03d}.jpg", t, THUMB_BOX, False) for i, t in enumerate(thumbnail_times(source.duration), 1)]
    pictures: list[Picture] = []
    seen: set[bytes] = set()
    for filename, at, box, representative in plan:
        path = os.path.join(out_dir, filename)
        made = _render(url, at, path, source, box, representative, protocols, keyframe_only=True)
        if not made or (not representative and Path(path).read_bytes() in seen):
            made = _render(url, at, path, source, box, False, protocols, keyframe_only=False)
        if not made:
            raise MediaToolError(f"ffmpeg produced no picture at {at:.2f} s")
        if not representative:
            seen.add(Path(path).read_bytes())
        pictures.append(Picture(filename, at, *fit_within(source.width, source.height, *box)))
    return pictures
