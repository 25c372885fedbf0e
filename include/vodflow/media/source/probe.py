"""ffprobe → SourceInfo, and every way a source can be bad, each with its code and a human message.

Parsing (``parse_probe``, ``sniff``) is pure, as are the limits a source must fit (``media.source.limits``); ``probe``
runs ffprobe with an argument list, a demuxer whitelist (an uploaded "video" must not be able to make ffmpeg read
playlists, concat lists or local files) and a protocol whitelist.
"""

from __future__ import annotations

import json
import math
import subprocess
from dataclasses import replace
from fractions import Fraction
from typing import Any

from vodflow import errors
from vodflow.errors import BadInput, MediaToolError
from vodflow.media.source.colour import HDR_TRANSFERS, colour_fields, first_frame_side_data, hdr_metadata
from vodflow.media.source.info import MIN_OUTPUT_FPS, STILL_BELOW_FPS, SourceInfo
from vodflow.media.source.inputs import ALLOWED_DEMUXERS, HTTP_PROTOCOLS
from vodflow.media.source.limits import check_limits, check_size  # noqa: F401 - where callers have found them
from vodflow.media.source.timestamps import DISCONTINUOUS_FORMATS, scan_timestamps, with_packet_scan
from vodflow.media.source.tracks import (
    main_track,
    parse_audio_tracks,
    parse_subtitle_tracks,
)
from vodflow.redact import redact_text

# Demuxers we accept. ffmpeg matches any comma-separated name of a demuxer ("mov" matches the mp4 demuxer).


# Standard frame rates a VFR source's average is snapped to when it is within 1.5 % of one.
STANDARD_FPS = [Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30),
                Fraction(48), Fraction(50), Fraction(60000, 1001), Fraction(60)]
ISO_BMFF_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"}




def sniff(head: bytes) -> tuple[str, str] | None:
    """Recognise common non-video files from their first bytes, for a precise message.

    Returns (error code, message) or None when the bytes could be a video container.
    """
    if not head:
        return errors.EMPTY_FILE, "The file is empty (0 bytes)."
    signatures: list[tuple[bytes, int, str, str]] = [
        (b"\xff\xd8\xff", 0, errors.NOT_A_VIDEO, "The file is a JPEG image, not a video."),
        (b"\x89PNG\r\n\x1a\n", 0, errors.NOT_A_VIDEO, "The file is a PNG image, not a video."),
        (b"GIF8", 0, errors.NOT_A_VIDEO, "The file is a GIF image; upload it as a video file (MP4, MOV, MKV)."),
        (b"%PDF", 0, errors.NOT_A_VIDEO, "The file is a PDF document, not a video."),
        (b"PK\x03\x04", 0, errors.NOT_A_VIDEO, "The file is a ZIP archive (or an office document), not a video."),
        (b"ID3", 0, errors.NO_VIDEO_STREAM, "The file is an MP3 audio file: it has no video."),
        (b"fLaC", 0, errors.NO_VIDEO_STREAM, "The file is a FLAC audio file: it has no video."),
    ]
    for magic, offset, code, message in signatures:
        if head[offset : offset + len(magic)] == magic:
            return code, message
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return errors.NO_VIDEO_STREAM, "The file is a WAV audio file: it has no video."
    if len(head) >= 12 and head[4:8] in ISO_BMFF_BOXES:
        return None
    if _looks_like_text(head):
        return errors.NOT_A_VIDEO, "The file is text, not a video."
    return None


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # A cut in the middle of a multi-byte character at the end of the sample is still text.
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return printable >= 0.95 * max(len(text), 1)


def classify_probe_failure(stderr: str, head: bytes) -> BadInput:
    """Turn an ffprobe failure into the most specific bad-input error we can justify."""
    reason = _last_meaningful_line(stderr)
    if "not on whitelist" in stderr:
        return BadInput(errors.NOT_A_VIDEO, "The file is not in a video format we accept "
                        "(MP4/MOV, MKV/WebM, AVI, MPEG-TS/PS, FLV, ASF/WMV, Ogg, MXF, DV).")
    if len(head) >= 12 and head[4:8] in ISO_BMFF_BOXES:
        return BadInput(errors.UNREADABLE, "The file looks like an MP4/MOV video but cannot be read; it is "
                        f"probably truncated (an interrupted upload) or corrupt. ffprobe said: {reason}")
    return BadInput(errors.NOT_A_VIDEO, f"The file is not a video ffmpeg can read. ffprobe said: {reason}")


def _last_meaningful_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no details"


def _ratio(value: str | None) -> Fraction | None:
    if not value or value in ("0/0", "N/A"):
        return None
    try:
        num, _, den = value.replace(":", "/").partition("/")  # frame rates use "/", aspect ratios ":"
        fraction = Fraction(int(num), int(den or 1))
    except (ValueError, ZeroDivisionError):
        return None
    return fraction if fraction > 0 else None


def _rotation(stream: dict[str, Any]) -> int:
    for side_data in stream.get("side_data_list") or []:
        if "rotation" in side_data:
            return round(float(side_data["rotation"])) % 360
    rotate = (stream.get("tags") or {}).get("rotate")
    return int(rotate) % 360 if rotate else 0


def _bit_depth(stream: dict[str, Any]) -> int:
    raw = stream.get("bits_per_raw_sample")
    if raw and str(raw).isdigit():
        return int(raw)
    pix_fmt = stream.get("pix_fmt") or ""
    for depth in (16, 14, 12, 10, 9):
        if f"p{depth}" in pix_fmt:
            return depth
    return 8


def output_frame_rate(avg: Fraction | None, real: Fraction | None) -> tuple[Fraction, bool]:
    """Pick the constant output rate: the average rate, snapped to a standard rate, never above 60 (Apple 1.19),
    never below ``MIN_OUTPUT_FPS`` (a whole multiple of a slower rate)."""
    rate, vfr = _source_rate(avg, real)
    return at_least(_output_rate(rate, vfr), MIN_OUTPUT_FPS), vfr


def at_least(rate: Fraction, floor: Fraction) -> Fraction:
    """``rate`` times the smallest whole number that brings it to ``floor``: each frame repeated evenly."""
    return rate * math.ceil(floor / rate) if rate < floor else rate


def _source_rate(avg: Fraction | None, real: Fraction | None) -> tuple[Fraction, bool]:
    rate = avg or real
    if rate is None:
        raise BadInput(errors.UNREADABLE, "The video stream has no usable frame rate.")
    return rate, bool(avg and real and abs(float(real) - float(avg)) / float(avg) > 0.01)


def _output_rate(rate: Fraction, vfr: bool) -> Fraction:
    divisor = 1
    while rate / divisor > 60:
        divisor += 1
    rate = rate / divisor
    nearest = min(STANDARD_FPS, key=lambda standard: abs(float(rate) - float(standard)))
    if abs(float(rate) - float(nearest)) / float(nearest) <= 0.015:
        return nearest
    if vfr:
        # An irregular source's average (e.g. 12.981) is no rate a player or a 90 kHz timestamp grid can state
        # exactly: encode it at the nearest whole rate, which FRAME-RATE then declares exactly.
        return Fraction(max(1, round(float(rate))))
    return rate.limit_denominator(1001)


def parse_probe(data: dict[str, Any], size_bytes: int) -> SourceInfo:
    """Interpret ffprobe's JSON (``-show_format -show_streams``). Raises BadInput for unusable sources."""
    streams = data.get("streams") or []
    fmt = data.get("format") or {}
    video_streams = _video_streams(streams)
    audio_streams = [s for s in streams if s.get("codec_type") == "audio"]
    if not video_streams:
        if audio_streams:
            raise BadInput(errors.NO_VIDEO_STREAM, "The file has audio but no video stream (audio-only file).")
        raise BadInput(errors.NO_VIDEO_STREAM, "The file has no video stream.")
    video = video_streams[0]
    format_name = str(fmt.get("format_name") or "")
    codec = str(video.get("codec_name") or "unknown")
    if format_name.endswith("_pipe") or format_name in ("image2", "gif"):
        raise BadInput(errors.NOT_A_VIDEO, f"The file is a still image ({codec}), not a video.")

    duration = _first_float(fmt.get("duration"), video.get("duration"))
    if duration is None or duration <= 0:
        raise BadInput(errors.UNREADABLE, "The video's duration cannot be determined; the file is probably corrupt.")

    coded_w, coded_h = int(video.get("width") or 0), int(video.get("height") or 0)
    if coded_w <= 0 or coded_h <= 0:
        raise BadInput(errors.UNREADABLE, "The video stream has no picture size; the file is probably corrupt.")
    sar = _ratio(video.get("sample_aspect_ratio")) or Fraction(1)
    display_w, display_h = round(coded_w * sar), coded_h
    rotation = _rotation(video)
    if rotation in (90, 270):
        display_w, display_h = display_h, display_w

    avg, real = _ratio(video.get("avg_frame_rate")), _ratio(video.get("r_frame_rate"))
    fps, vfr = output_frame_rate(avg, real)
    still = _source_rate(avg, real)[0] < STILL_BELOW_FPS
    tracks = parse_audio_tracks(streams)
    audio = audio_streams[main_track(tracks).index] if audio_streams else None
    field_order = str(video.get("field_order") or "progressive")
    colour = colour_fields(video)
    mastering, light = hdr_metadata(video.get("side_data_list"))
    return SourceInfo(
        duration=round(duration, 3),
        width=display_w,
        height=display_h,
        fps=f"{fps.numerator}/{fps.denominator}",
        vfr=vfr,
        video_codec=codec,
        pix_fmt=str(video.get("pix_fmt") or "unknown"),
        bit_depth=_bit_depth(video),
        hdr=colour["color_transfer"] in HDR_TRANSFERS,
        interlaced=field_order in ("tt", "bb", "tb", "bt"),
        rotation=rotation,
        has_audio=audio is not None,
        audio_codec=str(audio.get("codec_name")) if audio else None,
        audio_channels=int(audio.get("channels") or 0) if audio else 0,
        format_name=format_name,
        size_bytes=size_bytes,
        bitrate=int(_first_float(fmt.get("bit_rate")) or 0),
        video_end=_video_end(video, fmt),
        audio_tracks=tracks,
        subtitle_tracks=parse_subtitle_tracks(streams),
        start_time=_first_float(fmt.get("start_time")) or 0.0,
        still=still,
        coded_pixels=coded_w * coded_h,
        decode_fps=round(float(max(_source_rate(avg, real)[0], fps)), 3),
        streams=sum(1 for s in streams if s.get("codec_type") != "attachment"),
        **colour,
        mastering_display=mastering,
        content_light=light,
    )


def _video_streams(streams: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The picture streams, cover art aside: the first is the video."""
    return [s for s in streams
            if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")]


def with_first_frame_metadata(source: SourceInfo, side_data: list[Any]) -> SourceInfo:
    """``source`` with the HDR metadata its container did not give, from its first frame's side data."""
    mastering, light = hdr_metadata(side_data)
    return replace(source, mastering_display=source.mastering_display or mastering,
                   content_light=source.content_light or light)


def _video_end(video: dict[str, Any], fmt: dict[str, Any]) -> float | None:
    """The video stream's end relative to the file's start, when the container states the stream's length."""
    start, length = _first_float(video.get("start_time")), _first_float(video.get("duration"))
    if start is None or not length:
        return None
    return round(start - (_first_float(fmt.get("start_time")) or 0.0) + length, 3)


def _first_float(*values: Any) -> float | None:
    for value in values:
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if number == number:  # not NaN
            return number
    return None


def ffprobe_args(url: str, protocols: str) -> list[str]:
    return [
        "ffprobe", "-v", "error", "-hide_banner",
        "-protocol_whitelist", protocols, "-format_whitelist", ALLOWED_DEMUXERS,
        "-show_format", "-show_streams", "-of", "json", url,
    ]


def probe(url: str, size_bytes: int, head: bytes, *, protocols: str = HTTP_PROTOCOLS,
          timeout: float = 120.0) -> SourceInfo:
    """Probe a source by URL (a presigned S3 URL or a local path); only the container headers are read."""
    sniffed = sniff(head)
    if sniffed:
        raise BadInput(*sniffed)
    try:
        result = subprocess.run(  # noqa: S603 - an argument list; the URL is ours (presigned) or a local path
            ffprobe_args(url, protocols), capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise MediaToolError(f"ffprobe did not finish within {timeout:g} s") from exc
    if result.returncode != 0:
        stderr = redact_text(result.stderr.replace(url, "<source>"))
        if _is_transport_failure(stderr):
            raise MediaToolError("ffprobe could not fetch the source", stderr[-2000:])
        raise classify_probe_failure(stderr, head)
    data = json.loads(result.stdout or "{}")
    source = parse_probe(data, size_bytes)
    if source.hdr and (source.mastering_display is None or source.content_light is None):
        # HEVC and AV1 carry it in the bitstream (SEI, metadata OBUs), which only a decoded frame shows.
        index = _video_streams(data.get("streams") or [])[0].get("index")
        if isinstance(index, int) and not isinstance(index, bool):
            source = with_first_frame_metadata(source, first_frame_side_data(url, protocols, index))
    if source.format_name in DISCONTINUOUS_FORMATS:
        source = with_packet_scan(source, scan_timestamps(url, protocols))
    return source


def _is_transport_failure(stderr: str) -> bool:
    markers = ("Connection refused", "Connection timed out", "Server returned", "Input/output error")
    return any(marker in stderr for marker in markers)
