"""HDR kept in the 10-bit codecs: which dynamic range a source has, the picture its HDR renditions start from,
and the colour options (tags, mastering display, content light) their encoders write. Pure.

The H.264 ladder stays SDR (``ffmpeg.normalize_picture`` tone-maps it) as the fallback; an SDR source never gets
HDR tags.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ffmpeg

from vodflow.media.encode.codecs import CODECS
from vodflow.media.source.info import SourceInfo

SDR, PQ, HLG = "SDR", "PQ", "HLG"  # HLS VIDEO-RANGE values


@dataclass(frozen=True)
class ColorOptions:
    """What an HDR (or SDR) rendition's encoder is given: ffmpeg output options (pixel format, colour tags) and
    encoder-private ``key=value`` parameters (``x265-params`` / ``svtav1-params``: mastering display, CLL)."""

    options: dict[str, object] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


def dynamic_range(source: SourceInfo, codec: str) -> str:
    """The VIDEO-RANGE of ``codec``'s renditions of ``source``: SDR unless the source is HDR and the codec
    keeps it."""
    if not source.hdr or not CODECS[codec].hdr:
        return SDR
    return PQ  # refined from the source's transfer (smpte2084 → PQ, arib-std-b67 → HLG) by the HDR work


def color_options(source: SourceInfo, codec: str) -> ColorOptions:
    """The colour options of ``codec``'s renditions of ``source`` (none for SDR: today's tags)."""
    return ColorOptions()


def hdr_picture(video: ffmpeg.nodes.FilterableStream, source: SourceInfo) -> ffmpeg.nodes.FilterableStream:
    """The picture an HDR rendition is encoded from, given the decoded (deinterlaced, not tone-mapped) picture:
    kept as the source's HDR, converted to 10 bits where needed. Stub until the HDR work: the picture as it is
    (the rendition's pixel format, 10-bit, is applied by the encode's scaler)."""
    return video
