"""Sources whose clock jumps: two captures in one MPEG-TS, a recorder that was restarted. ffprobe's duration
of such a file is one capture's; reading every video packet's timestamps (no decoding) gives the real length and
says the source must not be cut in chunks by time. Parsing is pure; ``scan_timestamps`` runs ffprobe.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import TYPE_CHECKING

from vodflow.media.source.inputs import ALLOWED_DEMUXERS

if TYPE_CHECKING:
    from vodflow.media.source.info import SourceInfo


def _ratio(value: str) -> Fraction | None:
    num, _, den = value.partition("/")
    try:
        fraction = Fraction(int(num), int(den or 1))
    except (ValueError, ZeroDivisionError):
        return None
    return fraction if fraction > 0 else None


# Containers whose timestamps may jump (ffmpeg's AVFMT_TS_DISCONT): their duration is checked packet by packet.
DISCONTINUOUS_FORMATS = {"mpegts", "mpeg"}
MAX_TIMESTAMP_STEP = 1.0  # seconds between consecutive video packets (in decode order) that is not a jump


@dataclass(frozen=True)
class TimestampScan:
    duration: float  # seconds of video, the contiguous runs' lengths added up
    jumps: int  # places where the video clock jumps back, or forward by more than MAX_TIMESTAMP_STEP


def parse_packet_timestamps(lines: list[str], time_base: Fraction) -> TimestampScan:
    """``pts,dts,duration`` per video packet in file order (ffprobe's CSV, its field order) → the video's real
    length and its jumps (judged on DTS, which is monotonic within a run even with B-frames)."""
    runs: list[tuple[int, int]] = []  # (first pts, end pts) of each contiguous run
    last_dts: int | None = None
    frame = 0
    for line in lines:
        fields = line.strip().rstrip(",").split(",")
        if len(fields) < 3 or not fields[1].lstrip("-").isdigit():
            continue
        dts = int(fields[1])
        pts = int(fields[0]) if fields[0].lstrip("-").isdigit() else dts
        frame = int(fields[2]) if fields[2].isdigit() and int(fields[2]) > 0 else frame
        if last_dts is None or dts < last_dts or (dts - last_dts) * time_base > MAX_TIMESTAMP_STEP:
            runs.append((pts, pts + frame))
        start, end = runs[-1]
        runs[-1] = (min(start, pts), max(end, pts + frame))
        last_dts = dts
    seconds = sum((end - start) * time_base for start, end in runs)
    return TimestampScan(duration=round(float(seconds), 3), jumps=max(0, len(runs) - 1))


def scan_timestamps(url: str, protocols: str, timeout: float = 600.0) -> TimestampScan | None:
    """Read every video packet's timestamps (no decoding). None when ffprobe cannot say."""
    args = ["ffprobe", "-v", "error", "-protocol_whitelist", protocols, "-format_whitelist", ALLOWED_DEMUXERS,
            "-select_streams", "v:0", "-show_entries", "stream=time_base:packet=pts,dts,duration", "-of", "csv=p=0",
            url]
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
    except subprocess.TimeoutExpired:
        return None
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0 or not lines:
        return None
    time_base = _ratio(lines[-1].strip().rstrip(","))  # the stream section comes after the packets
    return parse_packet_timestamps(lines[:-1], time_base) if time_base else None


def with_real_duration(source: SourceInfo, scan: TimestampScan | None) -> SourceInfo:
    """The probed source, corrected by its packet scan when its timestamps jump."""
    if scan is None or not scan.jumps:
        return source
    return replace(source, duration=scan.duration, discontinuous=True, video_end=scan.duration)
