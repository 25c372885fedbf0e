"""Subtitle renditions in the CMAF tree: the TS tree's WebVTT segments listed by the fMP4 master (their
``X-TIMESTAMP-MAP`` ties local 0 to the first picture's MPEG-TS time, and the CMAF tracks keep the TS timeline,
so the same segments line up), and one whole WebVTT per track for the MPD (DASH players read a text track as one
file: an ``AdaptationSet`` of ``text/vtt`` with a ``BaseURL``; its times count from the Period's start, the first
picture). Pure: text in, text out.
"""

from __future__ import annotations

from vodflow.media.escaping import vtt_cue_text
from vodflow.media.package.webvtt import Cue, _stamp, parse_captions


def segment_cues_of(segment: str) -> list[Cue]:
    """The cues of one WebVTT segment as ``webvtt.segment_cues`` wrote it (header block, then cues)."""
    _, _, body = segment.replace("\r\n", "\n").partition("\n\n")
    return parse_captions("WEBVTT\n\n" + body) if body.strip() else []


def whole_vtt(segments: list[str]) -> str:
    """One WebVTT document from a track's segments: a cue repeated across segment boundaries written once."""
    seen: dict[tuple[float, float, str], Cue] = {}
    for segment in segments:
        for cue in segment_cues_of(segment):
            seen.setdefault((cue.start, cue.end, cue.text), cue)
    cues = sorted(seen.values(), key=lambda c: (c.start, c.end))
    return "WEBVTT\n" + "".join(f"\n{_stamp(c.start)} --> {_stamp(c.end)}\n{vtt_cue_text(c.text)}\n" for c in cues)
