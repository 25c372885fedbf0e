"""A poster frame and evenly spaced thumbnails.

Each picture is one short ffmpeg run that seeks in the source (through a presigned URL, so only the bytes
around each instant are fetched) instead of decoding the whole video. The poster uses ffmpeg's ``thumbnail``
filter, which picks the most representative of a few keyframes, so a fade or a black frame is not the poster.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import ffmpeg

from vodflow.encode import classify_failure, normalize_picture
from vodflow.ladder import fit_within
from vodflow.probe import ALLOWED_DEMUXERS, HTTP_PROTOCOLS, SourceInfo
from vodflow.process import run_ffmpeg

POSTER_BOX = (1280, 720)
THUMB_BOX = (320, 180)
MAX_THUMBNAILS = 10
POSTER_CANDIDATES = 5  # keyframes the poster is chosen from
PICTURE_TIMEOUT = 120.0


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
                    representative: bool, protocols: str) -> list[str]:
    width, height = fit_within(source.width, source.height, *box)
    if representative:
        # The poster is chosen among a few keyframes from the one at or before ``at``: only those are decoded.
        stream = ffmpeg.input(url, ss=at, skip_frame="nokey", noaccurate_seek=None, protocol_whitelist=protocols,
                              format_whitelist=ALLOWED_DEMUXERS)
        video = normalize_picture(stream["v:0"], source).filter("thumbnail", POSTER_CANDIDATES)
    else:
        # Thumbnails are exact: decoding from the previous keyframe up to ``at`` costs half a GOP on average.
        stream = ffmpeg.input(url, ss=at, protocol_whitelist=protocols, format_whitelist=ALLOWED_DEMUXERS)
        video = normalize_picture(stream["v:0"], source)
    video = video.filter("scale", width, height, flags="lanczos").filter("setsar", 1)
    output = ffmpeg.output(video, out_path, **{"frames:v": 1, "q:v": 3, "map_metadata": -1, "update": 1})
    return ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "error", *output.get_args()]


def make_pictures(url: str, source: SourceInfo, out_dir: str, *,
                  protocols: str = HTTP_PROTOCOLS) -> list[Picture]:
    """poster.jpg plus 001.jpg... in ``out_dir``."""
    os.makedirs(out_dir, exist_ok=True)
    plan = [("poster.jpg", poster_time(source.duration), POSTER_BOX, True)]
    plan += [(f"{i:03d}.jpg", t, THUMB_BOX, False) for i, t in enumerate(thumbnail_times(source.duration), 1)]
    pictures = []
    for filename, at, box, representative in plan:
        path = os.path.join(out_dir, filename)
        result = run_ffmpeg(picture_command(url, at, path, source, box, representative, protocols),
                            timeout=PICTURE_TIMEOUT, redact=url)
        if result.returncode == 0 and representative and not os.path.exists(path):
            # No keyframe to choose from near ``at``: take the exact frame instead.
            result = run_ffmpeg(picture_command(url, at, path, source, box, False, protocols),
                                timeout=PICTURE_TIMEOUT, redact=url)
        if result.returncode != 0 or not os.path.exists(path):
            raise classify_failure(result)
        pictures.append(Picture(filename, at, *fit_within(source.width, source.height, *box)))
    return pictures
