"""A source's colour and static HDR metadata, from ffprobe: the stream's colour fields and its side data (MP4
``mdcv``/``clli`` boxes, Matroska colour elements), else the first frame's (HEVC SEI, AV1 metadata OBUs).

Everything here comes from an uploaded file, so it is parsed strictly: a number that is not a plain integer or
fraction, or is out of its range, drops that piece of metadata (logged, never a failed video — the picture is
still fine, and an HDR rendition without mastering metadata is still HDR). Parsing is pure; ``first_frame_side_data``
runs the one extra, tiny ffprobe (only for an HDR source whose container did not say it all).
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
from fractions import Fraction
from typing import Any

from vodflow.media.source.info import ContentLight, MasteringDisplay
from vodflow.media.source.inputs import ALLOWED_DEMUXERS

log = logging.getLogger(__name__)

PQ_TRANSFER, HLG_TRANSFER = "smpte2084", "arib-std-b67"
HDR_TRANSFERS = {PQ_TRANSFER, HLG_TRANSFER}
MASTERING = "Mastering display metadata"  # ffprobe's side_data_type names
CONTENT_LIGHT = "Content light level metadata"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")  # ffprobe's colour names: bt2020nc, smpte2084, arib-std-b67, tv
_NUMBER = re.compile(r"[0-9]{1,12}(/[0-9]{1,12})?")
MAX_NITS = 10000  # PQ's ceiling: a mastering display brighter than this is nonsense
MAX_LIGHT_LEVEL = 65535  # CLL fields are 16-bit


def colour_fields(stream: dict[str, Any]) -> dict[str, str]:
    """The stream's colour description as ``SourceInfo`` fields; "" for what the file leaves unsaid."""
    return {"color_transfer": _name(stream.get("color_transfer")),
            "color_primaries": _name(stream.get("color_primaries")),
            "color_matrix": _name(stream.get("color_space")),
            "color_range": _name(stream.get("color_range"))}


def _name(value: Any) -> str:
    text = value if isinstance(value, str) else ""
    return text if _NAME.fullmatch(text) and text not in ("unknown", "reserved", "unspecified") else ""


def hdr_metadata(side_data: list[Any] | None) -> tuple[MasteringDisplay | None, ContentLight | None]:
    """The mastering display and content light level in a ``side_data_list`` (a stream's or a frame's)."""
    mastering = light = None
    for entry in side_data if isinstance(side_data, list) else []:
        if not isinstance(entry, dict):
            continue
        if entry.get("side_data_type") == MASTERING and mastering is None:
            mastering = parse_mastering_display(entry)
        elif entry.get("side_data_type") == CONTENT_LIGHT and light is None:
            light = parse_content_light(entry)
    return mastering, light


def parse_mastering_display(entry: dict[str, Any]) -> MasteringDisplay | None:
    """ffprobe's mastering display entry (rationals: ``"34000/50000"`` from HEVC/MP4, ``"44564/65536"`` from
    AV1). None, logged, unless every primary, the white point and both luminances are there and plausible."""
    try:
        xy = {name: (_unit(entry, f"{name}_x"), _unit(entry, f"{name}_y"))
              for name in ("red", "green", "blue", "white_point")}
        high, low = _rational(entry, "max_luminance"), _rational(entry, "min_luminance")
        if not 0 < high <= MAX_NITS or not 0 <= low < high:
            raise ValueError(f"luminance range {float(low):g}–{float(high):g} cd/m² is implausible")
        if any(x + y == 0 for x, y in xy.values()):
            raise ValueError("a primary or the white point is unset (0, 0)")
    except ValueError as exc:
        log.warning("Mastering display metadata dropped: %s", exc)
        return None
    return MasteringDisplay(red=xy["red"], green=xy["green"], blue=xy["blue"], white_point=xy["white_point"],
                            max_luminance=float(high), min_luminance=float(low))


def parse_content_light(entry: dict[str, Any]) -> ContentLight | None:
    """ffprobe's content light level entry; None, logged, when a value is not a 16-bit count. (0, 0) means
    "not computed": nothing to carry."""
    try:
        cll, fall = (_integer(entry, key) for key in ("max_content", "max_average"))
    except ValueError as exc:
        log.warning("Content light level metadata dropped: %s", exc)
        return None
    return ContentLight(max_cll=cll, max_fall=fall) if cll or fall else None


def _rational(entry: dict[str, Any], key: str) -> Fraction:
    value = entry.get(key)
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _NUMBER.fullmatch(text):
        raise ValueError(f"{key} is missing or not a number: {str(value)[:40]!r}")
    num, _, den = text.partition("/")
    if den and int(den) == 0:
        raise ValueError(f"{key} divides by zero")
    return Fraction(int(num), int(den or 1))


def _unit(entry: dict[str, Any], key: str) -> float:
    value = _rational(entry, key)
    if value > 1:
        raise ValueError(f"{key} = {float(value):g} is no chromaticity (0–1)")
    return float(value)


def _integer(entry: dict[str, Any], key: str) -> int:
    value = _rational(entry, key)
    if value.denominator != 1 or value > MAX_LIGHT_LEVEL:
        raise ValueError(f"{key} = {float(value):g} is no light level (0–{MAX_LIGHT_LEVEL})")
    return int(value)


def first_frame_args(url: str, protocols: str, stream_index: int) -> list[str]:
    """ffprobe of the side data of one stream's first frame: reads and decodes one packet."""
    return ["ffprobe", "-v", "error", "-hide_banner", "-protocol_whitelist", protocols,
            "-format_whitelist", ALLOWED_DEMUXERS, "-select_streams", str(stream_index),
            "-read_intervals", "%+#1", "-show_entries", "frame_side_data_list", "-of", "json", url]


def first_frame_side_data(url: str, protocols: str, stream_index: int, timeout: float = 60.0) -> list[Any]:
    """The first frame's side data list; [] (logged) when ffprobe cannot tell: metadata is never worth a
    failed video."""
    try:
        result = subprocess.run(first_frame_args(url, protocols, stream_index),  # noqa: S603 - an argument list
                                capture_output=True, text=True, timeout=timeout, check=False)
        data = json.loads(result.stdout or "{}") if result.returncode == 0 else {}
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        log.warning("The first frame's HDR metadata could not be read: %s", type(exc).__name__)
        return []
    if result.returncode != 0:
        log.warning("The first frame's HDR metadata could not be read (ffprobe exit %s)", result.returncode)
    frames = data.get("frames") if isinstance(data, dict) else None
    first = frames[0] if isinstance(frames, list) and frames and isinstance(frames[0], dict) else {}
    side_data = first.get("side_data_list")
    return side_data if isinstance(side_data, list) else []
