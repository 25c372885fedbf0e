"""Caption parsing (SRT, WebVTT, with the line of the first error) and WebVTT segmenting. Pure."""

from __future__ import annotations

import pytest

from vodflow.media.package.webvtt import CaptionError, Cue, parse_captions, segment_cues
from vodflow.media.source.tracks import parse_subtitle_tracks


def test_srt_and_webvtt_give_the_same_cues():
    srt = "\ufeff1\r\n00:00:01,000 --> 00:00:02,500\r\nHello\r\n\r\n2\r\n01:00:05,000 --> 01:00:07,000\r\nA\r\nB\r\n"
    vtt = "WEBVTT\n\nNOTE a comment\n\nid-1\n00:01.000 --> 00:02.500 align:start\nHello\n\n" \
          "01:00:05.000 --> 01:00:07.000\nA\nB\n"
    expected = [Cue(1.0, 2.5, "Hello"), Cue(3605.0, 3607.0, "A\nB")]
    assert parse_captions(srt) == parse_captions(vtt) == expected


@pytest.mark.parametrize(("text", "line"), [
    ("1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:03,000 -> 00:00:04,000\nbad\n", 6),
    ("1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:0x,000 --> 00:00:04,000\nbad\n", 6),
    ("1\n00:00:05,000 --> 00:00:02,000\nbackwards\n", 2),
    ("just some text\nwithout timings\n", 1),
    ("WEBVTT\n", 1),
])
def test_a_bad_caption_file_names_its_line(text, line):
    with pytest.raises(CaptionError) as caught:
        parse_captions(text)
    assert caught.value.line == line


def test_segments_repeat_a_cue_that_spans_a_boundary_and_map_the_timestamps():
    documents = segment_cues([Cue(5.5, 7.0, "across"), Cue(13.0, 13.5, "tail")], [6.0, 6.0, 2.0], 126000)
    assert len(documents) == 3
    assert all(d.startswith("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n") for d in documents)
    assert ["across" in d for d in documents] == [True, True, False]
    assert "00:00:13.000 --> 00:00:13.500\ntail" in documents[2]


def test_bitmap_subtitles_are_told_apart_from_text():
    streams = [{"codec_type": "subtitle", "codec_name": "subrip", "tags": {"language": "eng"}},
               {"codec_type": "subtitle", "codec_name": "hdmv_pgs_subtitle", "tags": {"language": "fre"}},
               {"codec_type": "subtitle", "codec_name": "mov_text"}]
    tracks = parse_subtitle_tracks(streams)
    assert [(t.index, t.language, t.text) for t in tracks] == [(0, "en", True), (1, "fr", False), (2, "und", True)]
