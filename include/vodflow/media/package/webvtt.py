"""Text subtitles → segmented WebVTT for HLS (``EXT-X-MEDIA TYPE=SUBTITLES``). Pure: text in, text out.

Sources are the source's own text tracks (mov_text, SRT and ASS in MKV, …), which ffmpeg converts to WebVTT,
and sidecar caption files (SRT or WebVTT) named in the request. Each is parsed here, so a bad file is refused
with the line where it goes wrong, then cut into segments on the video's own segment boundaries: segment i holds
every cue that overlaps it (a cue spanning a boundary is repeated, as HLS expects), and each begins with
``X-TIMESTAMP-MAP`` tying the cues' local time 0 to the video's first MPEG-TS timestamp, so players line the
captions up with the picture. Cue text is written through ``escaping.vtt_cue_text``: a line of a cue holding
``-->`` would otherwise be read as the next cue's timing. Bitmap subtitles (PGS, DVB, DVD) cannot become WebVTT:
they are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vodflow.errors import VodflowError
from vodflow.media.escaping import vtt_cue_text

SUBTITLE_GROUP = "subs"
_TIME = re.compile(r"^(?:(\d+):)?([0-5]\d):([0-5]\d)[.,](\d{3})$")
_TIMING = re.compile(r"^\s*(\S+)\s+-->\s+(\S+)(?:\s+.*)?$")


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str  # WebVTT cue payload (one or more lines)


class CaptionError(VodflowError, ValueError):
    """A caption file that cannot be read, and the line (1-based) where it goes wrong."""

    def __init__(self, line: int, message: str) -> None:
        Exception.__init__(self, f"line {line}: {message}")  # the text the invalid_captions event quotes
        self.line = line
        self.message = message


def _seconds(stamp: str, line: int) -> float:
    match = _TIME.match(stamp)
    if not match:
        raise CaptionError(line, f"{stamp!r} is not a time (HH:MM:SS,mmm)")
    hours, minutes, seconds, millis = match.groups()
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + int(millis) / 1000


def parse_captions(text: str) -> list[Cue]:
    """SRT or WebVTT (told apart by the ``WEBVTT`` header) → cues in time order. Raises CaptionError."""
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    webvtt = bool(lines) and lines[0].startswith("WEBVTT")
    if not webvtt and not any("-->" in line for line in lines):
        raise CaptionError(1, "no cue timings (\"00:00:01,000 --> 00:00:02,000\"): not an SRT or WebVTT file")
    cues: list[Cue] = []
    i = 1 if webvtt else 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if webvtt and line.startswith(("NOTE", "STYLE", "REGION")):  # blocks that are not cues
            while i < len(lines) and lines[i].strip():
                i += 1
            continue
        if "-->" not in line:  # a cue identifier (SRT's number, WebVTT's optional id)
            if not webvtt and not line.strip().isdigit():
                raise CaptionError(i + 1, f"expected a cue number or timing, found {line.strip()[:40]!r}")
            i += 1
            if i >= len(lines) or "-->" not in lines[i]:
                raise CaptionError(i + 1, "a cue number must be followed by its timing")
            line = lines[i]
        timing = _TIMING.match(line)
        if not timing:
            raise CaptionError(i + 1, f"malformed timing {line.strip()[:60]!r}")
        start, end = _seconds(timing.group(1), i + 1), _seconds(timing.group(2), i + 1)
        if end < start:
            raise CaptionError(i + 1, "the cue ends before it starts")
        i += 1
        payload = []
        while i < len(lines) and lines[i].strip():
            payload.append(lines[i].rstrip())
            i += 1
        cues.append(Cue(start, end, "\n".join(payload)))
    if not cues:
        raise CaptionError(max((n + 1 for n, text in enumerate(lines) if text.strip()), default=1),
                           "the file has no cues")
    return sorted(cues, key=lambda c: (c.start, c.end))


def _stamp(seconds: float) -> str:
    millis = round(max(0.0, seconds) * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def segment_cues(cues: list[Cue], durations: list[float], mpegts_base: int) -> list[str]:
    """One WebVTT document per video segment (``durations``, in order): the cues that overlap it."""
    header = f"WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{mpegts_base},LOCAL:00:00:00.000\n"
    documents = []
    start = 0.0
    for index, duration in enumerate(durations):
        end = start + duration if index < len(durations) - 1 else float("inf")
        body = [f"\n{_stamp(c.start)} --> {_stamp(c.end)}\n{vtt_cue_text(c.text)}\n"
                for c in cues if c.start < end and c.end > start]
        documents.append(header + "".join(body))
        start += duration
    return documents
