"""Recognised words → readable caption cues (at most 2 lines of at most 42 characters, each shown 1–7 s), a
WebVTT document of them, and the transcripts (plain text, and JSON segments with their times).

A cue ends at a sentence's end, before a pause, or when one more word would not fit two lines or seven seconds,
so each sentence starts a cue of its own at its first word. A cue shorter than a second is held longer, up to
the next cue. The words are text from a model: written through ``escaping.vtt_plain_text``, never as markup.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from vodflow.media.escaping import vtt_plain_text
from vodflow.media.package.webvtt import Cue, _stamp
from vodflow.media.speech.recognise import Transcript, Word

LINE_CHARS = 42
MAX_LINES = 2
MIN_SECONDS = 1.0
MAX_SECONDS = 7.0
PAUSE_SECONDS = 0.6  # silence between two words that starts a new cue
SENTENCE_END = (".", "?", "!", "…")


@dataclass(frozen=True)
class CuePolicy:
    line_chars: int = LINE_CHARS
    max_lines: int = MAX_LINES
    min_seconds: float = MIN_SECONDS
    max_seconds: float = MAX_SECONDS
    pause_seconds: float = PAUSE_SECONDS


def wrap(words: list[str], width: int) -> list[str]:
    """Words into lines of at most ``width`` characters, balanced (the break nearest the middle that fits)."""
    text = " ".join(words)
    if len(text) <= width:
        return [text]
    best: tuple[int, list[str]] | None = None
    for cut in range(1, len(words)):
        first, second = " ".join(words[:cut]), " ".join(words[cut:])
        if len(first) <= width and len(second) <= width:
            score = abs(len(first) - len(second))
            if best is None or score < best[0]:
                best = (score, [first, second])
    if best is not None:
        return best[1]
    lines, line = [], ""  # more than two lines' worth: greedy (the caller never lets this happen for a cue)
    for word in words:
        candidate = f"{line} {word}".strip()
        if len(candidate) <= width or not line:
            line = candidate
        else:
            lines.append(line)
            line = word
    return [*lines, line]


def _fits(words: list[str], policy: CuePolicy) -> bool:
    lines = wrap(words, policy.line_chars)
    return len(lines) <= policy.max_lines and all(len(line) <= policy.line_chars for line in lines)


def _pieces(text: str, width: int) -> list[str]:
    """A "word" longer than a line (no model says one, a hostile one might) cut into line-long pieces."""
    return [text[i: i + width] for i in range(0, len(text), width)] or [""]


def build_cues(transcript: Transcript, policy: CuePolicy | None = None) -> list[Cue]:
    """The transcript's words grouped into cues, in time order, none overlapping the next."""
    policy = policy or CuePolicy()
    groups: list[list[Word]] = []
    for segment in transcript.segments:
        words = list(segment.words) or [Word(segment.start, segment.end, segment.text)]
        for word in words:
            text = word.text.strip()
            if not text:
                continue
            for piece in _pieces(text, policy.line_chars):
                word = Word(word.start, max(word.end, word.start), piece)
                group = groups[-1] if groups else None
                if group is None or not _continues(group, word, policy):
                    groups.append([word])
                else:
                    group.append(word)
    cues: list[Cue] = []
    for index, group in enumerate(groups):
        start = group[0].start
        end = min(max(group[-1].end, start + policy.min_seconds), start + policy.max_seconds)
        if index + 1 < len(groups):  # held at most until the next cue: cues never overlap
            end = min(end, groups[index + 1][0].start)
        lines = wrap([w.text for w in group], policy.line_chars)
        cues.append(Cue(round(start, 3), round(max(end, start + 0.001), 3), "\n".join(lines)))
    return cues


def _continues(group: list[Word], word: Word, policy: CuePolicy) -> bool:
    last = group[-1]
    if last.text.endswith(SENTENCE_END):
        return False
    if word.start - last.end >= policy.pause_seconds:
        return False
    if word.end - group[0].start > policy.max_seconds:
        return False
    return _fits([w.text for w in group] + [word.text], policy)


def render_vtt(cues: list[Cue]) -> str:
    """One WebVTT document of every cue (times from the video's start), for a download or a DASH text track."""
    body = "".join(f"\n{_stamp(c.start)} --> {_stamp(c.end)}\n{vtt_plain_text(c.text)}\n" for c in cues)
    return "WEBVTT\n" + body


def escaped_cues(cues: list[Cue]) -> list[Cue]:
    """The cues with their text escaped for WebVTT (what ``webvtt.segment_cues`` writes as it is)."""
    return [Cue(c.start, c.end, vtt_plain_text(c.text)) for c in cues]


def transcript_text(transcript: Transcript) -> str:
    """Plain text: a line per recognised segment (sentences, roughly)."""
    return "".join(f"{s.text}\n" for s in transcript.segments)


def transcript_json(transcript: Transcript) -> str:
    """Segments with start/end (seconds on the video's timeline) and their words."""
    return json.dumps({
        "language": transcript.language, "duration": transcript.duration, "model": transcript.model,
        "segments": [{"start": s.start, "end": s.end, "text": s.text,
                      "words": [{"start": w.start, "end": w.end, "text": w.text.strip()} for w in s.words]}
                     for s in transcript.segments],
    }, ensure_ascii=False, indent=1) + "\n"
