"""The envelope a source must fit before anything is encoded: its size, length and picture, and the work its
whole job asks for (the decode budget, the tracks). Pure: each refusal is a ``BadInput`` with the number that
broke the limit, in words a person understands."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vodflow import errors
from vodflow.errors import BadInput
from vodflow.media.options import Limits

if TYPE_CHECKING:
    from vodflow.media.source.info import SourceInfo

# 4 h of 4K (3840x2160) at 60 fps is 7.17 trillion pixels; the default decode budget lets that (and DCI 4K at 60)
# through with room to spare, and refuses 8192x8192 at 60 fps beyond 33 min.
DECODE_BUDGET_REFERENCE = "4 h of 4K at 60 fps"


def check_size(size_bytes: int, max_size_bytes: int) -> None:
    """The size limit, wherever a size is known: an upload request (before the file is sent), a run's source
    (before anything is read). Raises BadInput ``too_large``."""
    if size_bytes > max_size_bytes:
        raise BadInput(errors.TOO_LARGE, f"The file is {size_bytes:,} bytes ({size_bytes / 1024**3:.2f} GiB); "
                       f"the maximum is {max_size_bytes:,} bytes ({max_size_bytes / 1024**3:g} GiB).")


def check_limits(source: SourceInfo, limits: Limits) -> None:
    """Refuse sources outside the configured envelope, each with the number that broke it."""
    if source.duration < limits.min_duration:
        raise BadInput(errors.TOO_SHORT, f"The video is {source.duration:.2f} s long; "
                       f"the minimum is {limits.min_duration:g} s.")
    if source.duration > limits.max_duration:
        raise BadInput(errors.TOO_LARGE, f"The video is {source.duration / 60:.1f} min long; "
                       f"the maximum is {limits.max_duration / 60:g} min.")
    check_size(source.size_bytes, limits.max_size_bytes)
    smaller, larger = sorted((source.width, source.height))
    if smaller < limits.min_dimension or larger > limits.max_dimension:
        raise BadInput(errors.UNSUPPORTED_DIMENSIONS, f"The video is {source.width}x{source.height}; "
                       f"each side must be between {limits.min_dimension} and {limits.max_dimension} pixels.")
    check_decode_budget(source, limits)


def check_decode_budget(source: SourceInfo, limits: Limits) -> None:
    """Refuse a source whose whole job is too much work, whatever its size on disk: the pixels to decode
    (picture × frame rate × duration) and the tracks and streams to demux and encode. ``too_large``."""
    pixels = source.pixel_rate * source.duration
    if pixels > limits.max_decode_pixels:
        raise BadInput(errors.TOO_LARGE, f"The video is {source.width}x{source.height} at {source.decode_fps:g} fps "
                       f"for {source.duration / 60:.1f} min: {pixels / 1e12:.1f} trillion pixels to decode; the "
                       f"maximum is {limits.max_decode_pixels / 1e12:g} trillion (about {DECODE_BUDGET_REFERENCE}). "
                       "A shorter video, or one of a lower resolution or frame rate, fits.")
    counts = [(len(source.audio_tracks), limits.max_audio_tracks, "audio tracks", " (each is an encode of its own)"),
              (len(source.subtitle_tracks), limits.max_subtitle_tracks, "subtitle tracks", ""),
              (source.streams, limits.max_streams, "streams (video, audio, subtitles, data)", "")]
    for count, most, what, why in counts:
        if count > most:
            raise BadInput(errors.TOO_LARGE, f"The file has {count} {what}; at most {most} are accepted{why}.")
