"""Sources whose clock jumps: two captures in one MPEG-TS, a recorder that was restarted. ffprobe's duration
of such a file is one capture's; reading every video packet's timestamps (no decoding) gives the real length and
says the source must not be cut in chunks by time. Parsing is pure; ``scan_timestamps`` runs ffprobe.

The same scan measures the longest run between keyframes. These containers have no index: a seek lands on
whatever packet is near the time asked (ffmpeg's MPEG-TS demuxer marks every packet a keyframe while it searches),
and the decoder shows nothing before the next real keyframe. A chunk read from 1 s before its start lost the frames
up to that keyframe (10 frames of a broadcast TS with 2 s GOPs whose audio starts 0.3 s early, and was called
truncated); it must start at least one keyframe interval earlier (``chunks.seek_preroll``).
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
# What a chunk's read allows for when the scan could not run (ffprobe failed or timed out): longer than the GOPs
# of broadcast and camera MPEG-TS; a chunk that still starts late is then not blamed on the file (chunks).
UNSCANNED_KEYFRAME_INTERVAL = 10.0


@dataclass(frozen=True)
class TimestampScan:
    duration: float  # seconds of video, the contiguous runs' lengths added up
    jumps: int  # places where the video clock jumps back, or forward by more than MAX_TIMESTAMP_STEP
    # The longest stretch (seconds of pts) from a keyframe to the next, or to a run's end; a run's length when
    # it has no keyframe flag at all (then only a read from its start is sure to decode).
    keyframe_interval: float = 0.0


def parse_packet_timestamps(lines: list[str], time_base: Fraction) -> TimestampScan:
    """``pts,dts,duration[,flags]`` per video packet in file order (ffprobe's CSV, its field order) → the video's
    real length and its jumps (judged on DTS, which is monotonic within a run even with B-frames), and its longest
    keyframe interval (``K`` in the flags)."""
    runs: list[tuple[int, int]] = []  # (first pts, end pts) of each contiguous run
    keyframes: list[list[int]] = []  # each run's keyframe pts
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
            keyframes.append([])
        start, end = runs[-1]
        runs[-1] = (min(start, pts), max(end, pts + frame))
        if len(fields) > 3 and fields[3].startswith("K"):
            keyframes[-1].append(pts)
        last_dts = dts
    seconds = sum((end - start) * time_base for start, end in runs)
    return TimestampScan(duration=round(float(seconds), 3), jumps=max(0, len(runs) - 1),
                         keyframe_interval=round(float(max(_longest_gap(run, found) for run, found
                                                           in zip(runs, keyframes, strict=True)) * time_base), 3)
                         if runs else 0.0)


def _longest_gap(run: tuple[int, int], keyframes: list[int]) -> int:
    """The longest stretch of a run without a keyframe to start decoding from: between two keyframes, or from the
    last one to the run's end (a seek past it finds no later one)."""
    marks = sorted(keyframes)
    if not marks:
        return run[1] - run[0]
    return max(b - a for a, b in zip([*marks], [*marks[1:], run[1]], strict=True))


def scan_timestamps(url: str, protocols: str, timeout: float = 600.0) -> TimestampScan | None:
    """Read every video packet's timestamps (no decoding). None when ffprobe cannot say."""
    args = ["ffprobe", "-v", "error", "-protocol_whitelist", protocols, "-format_whitelist", ALLOWED_DEMUXERS,
            "-select_streams", "v:0", "-show_entries", "stream=time_base:packet=pts,dts,duration,flags",
            "-of", "csv=p=0", url]
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
    except subprocess.TimeoutExpired:
        return None
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0 or not lines:
        return None
    time_base = _ratio(lines[-1].strip().rstrip(","))  # the stream section comes after the packets
    return parse_packet_timestamps(lines[:-1], time_base) if time_base else None


def with_packet_scan(source: SourceInfo, scan: TimestampScan | None) -> SourceInfo:
    """The probed source with what its packet scan found: its longest keyframe interval (how far before a chunk
    its read must start) and, when its timestamps jump, its real length."""
    if scan is None:
        return replace(source, keyframe_interval=UNSCANNED_KEYFRAME_INTERVAL)
    source = replace(source, keyframe_interval=scan.keyframe_interval)
    if not scan.jumps:
        return source
    return replace(source, duration=scan.duration, discontinuous=True, video_end=scan.duration)
