"""Recognised words → readable cues (at most 2 lines of 42 characters, 1–7 s, a sentence starts a cue), WebVTT
text escaped as plain text, transcripts; and the windows a long track is recognised in (flat memory, cut where
it is quiet)."""

from __future__ import annotations

import json

import numpy as np

from vodflow.media.package.webvtt import parse_captions
from vodflow.media.speech.cues import build_cues, render_vtt, transcript_json, transcript_text, wrap
from vodflow.media.speech.listen import RATE, quiet_cut, windows
from vodflow.media.speech.recognise import SpeechSegment, Transcript, Word, model_problem


def spoken(*sentences: tuple[float, str], rate: float = 0.3) -> Transcript:
    """Segments starting at the given times, one word every ``rate`` seconds."""
    segments = []
    for start, text in sentences:
        words = tuple(Word(start + i * rate, start + (i + 1) * rate - 0.05, " " + w)
                      for i, w in enumerate(text.split()))
        segments.append(SpeechSegment(start, words[-1].end, text, words))
    return Transcript(language="en", duration=100.0, segments=tuple(segments))


def test_a_long_sentence_becomes_cues_of_two_lines_of_42_characters_within_7_seconds():
    text = " ".join(["readable"] * 40) + "."
    cues = build_cues(spoken((2.0, text)))
    assert len(cues) > 1 and cues[0].start == 2.0
    for cue, following in zip(cues, [*cues[1:], None], strict=True):
        lines = cue.text.split("\n")
        assert len(lines) <= 2 and all(len(line) <= 42 for line in lines), cue
        assert 1.0 <= cue.end - cue.start <= 7.0 or (following is not None and cue.end == following.start), cue
        assert following is None or cue.end <= following.start
    assert " ".join(c.text.replace("\n", " ") for c in cues) == text  # no word lost or doubled


def test_each_sentence_and_each_pause_starts_a_cue_and_a_short_cue_is_held_a_second():
    cues = build_cues(spoken((1.0, "Hello there."), (1.7, "Next one"), (5.0, "after a pause")))
    assert [(c.start, c.text) for c in cues] == [(1.0, "Hello there."), (1.7, "Next one"), (5.0, "after a pause")]
    assert cues[0].end == 1.7  # held until the next cue, never over it
    assert cues[1].end == 2.7  # 0.55 s of words, shown 1 s


def test_words_are_plain_text_in_the_webvtt_and_a_hostile_word_cannot_make_a_cue():
    transcript = spoken((0.0, "a <b>bold</b> & 00:00:01.000 --> 00:00:02.000 claim"))
    vtt = render_vtt(build_cues(transcript))
    assert "<b>" not in vtt and "&lt;b&gt;bold&lt;/b&gt; &amp;" in vtt and "-->" not in vtt.split("\n", 3)[3]
    assert len(parse_captions(vtt)) == len(build_cues(transcript))


def test_wrap_balances_two_lines_and_a_long_word_is_cut_to_a_line():
    assert wrap(["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven"], 42) == [
        "one two three four five six", "seven eight nine ten eleven"]
    cues = build_cues(spoken((0.0, "x" * 100)))
    assert all(len(line) <= 42 for c in cues for line in c.text.split("\n"))


def test_transcripts_have_every_segment_with_its_times():
    transcript = spoken((1.0, "First sentence."), (4.0, "Second sentence."))
    assert transcript_text(transcript) == "First sentence.\nSecond sentence.\n"
    data = json.loads(transcript_json(transcript))
    assert [(s["start"], s["text"]) for s in data["segments"]] == [(1.0, "First sentence."), (4.0, "Second sentence.")]
    assert data["segments"][0]["words"][0] == {"start": 1.0, "end": 1.25, "text": "First"}


def test_no_words_no_cues():
    assert build_cues(Transcript(language="en", duration=10.0)) == []


def test_windows_cover_the_track_once_and_are_cut_where_it_is_quiet(tmp_path):
    """70 s of tone with a 0.3 s silence at 27 s: windows of 30 s cut in that silence, and together they are the
    whole track, each sample once."""
    t = np.arange(70 * RATE) / RATE
    samples = (0.5 * np.sin(2 * np.pi * 220 * t) * 32767).astype("<i2")
    samples[int(27.0 * RATE): int(27.3 * RATE)] = 0
    path = tmp_path / "track.pcm"
    path.write_bytes(samples.tobytes())
    parts = list(windows(str(path), 30.0))
    assert 26.9 < parts[1].start < 27.3
    assert sum(len(p.samples) for p in parts) == len(samples)
    assert [p.start for p in parts] == sorted(p.start for p in parts)
    assert quiet_cut(np.ones(10, dtype=np.float32)) == 10  # too short to search: the whole window


def test_a_model_directory_without_its_files_is_named_as_the_problem(tmp_path):
    assert "missing model.bin, config.json" in model_problem(str(tmp_path))
    assert "no speech model is installed" in model_problem("")
