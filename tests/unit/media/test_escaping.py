"""The escaping layer (media/escaping) and the request's caption rules: each format's writer keeps hostile strings
inside their attribute, line or header, read back by that format's own parser."""

from __future__ import annotations

import re
from urllib.parse import unquote

import jsonschema
import m3u8
import pytest

from vodflow.layout import content_disposition
from vodflow.media import escaping
from vodflow.media.package import hls
from vodflow.media.package.webvtt import Cue, parse_captions, segment_cues
from vodflow.media.source.tracks import language_tag, parse_audio_tracks
from vodflow.request import SCHEMAS, RequestError, check_fields

HOSTILE = 'x",URI="http://evil.example/a.m3u8"\r\n#EXT-X-STREAM-INF:BANDWIDTH=1\nhttp://evil.example/v.m3u8'


@pytest.mark.parametrize(("raw", "tag"), [
    ("eng", "en"), ("fra", "fr"), ("en-US", "en-US"), ("pt-br", "pt-BR"), ("ZH-HANT-tw", "zh-Hant-TW"),
    ("eng-GB", "en-GB"), ("", "und"), (None, "und"),
    ("zxx", "und"), ('en"', "und"), ("en\nX", "und"), ("français", "und"), ("ünd", "und"), ("e", "und"),
    ("en-" + "x" * 9, "und"), ("en-" + "-".join(["abc"] * 12), "und"),  # a subtag over 8, a tag over 35
])
def test_a_language_is_a_well_formed_bcp47_tag_or_und(raw, tag):
    assert language_tag(raw) == tag


def test_track_titles_are_one_line_without_quotes():
    streams = [{"codec_type": "audio", "tags": {"language": "fr\"\n#EXT", "title": HOSTILE}},
               {"codec_type": "audio", "tags": {"title": "\u202eevil\u2028two\x85three\ud800"}}]
    first, second = parse_audio_tracks(streams)
    assert first.language == "und" and '"' not in first.title and "\n" not in first.title
    assert len(first.title) <= escaping.MAX_NAME_CHARS and first.title.startswith("x',URI='http://evil")
    assert second.title == "evil two three"


def test_the_master_holds_only_its_own_entries_whatever_the_names():
    """Names that reach the writer unescaped (not read through the track model) are escaped there again, made
    unique, and a URI that would leave the tree is refused."""
    rendition = hls.MeasuredRendition("240p", 426, 240, "30", "avc1.640015,mp4a.40.2", "avc1.640015",
                                      [hls.Segment("seg_00000.ts", 6.0, 300_000)])
    audio = [hls.MeasuredAudio("en", "en", "English"), hls.MeasuredAudio("und", HOSTILE, "English",
                                                                          [hls.Segment("seg_00000.ts", 6.0, 96_000)])]
    subs = [hls.MeasuredSubtitles("de", 'de"', HOSTILE, [hls.Segment("seg_00000.vtt", 6.0, 100)])]
    text = hls.master_playlist([rendition], 6, audio, subs)
    assert not re.findall(r"(?<!^)#EXT", text, re.MULTILINE), text  # hls.js finds tags inside a line too
    master = m3u8.loads(text)
    assert [p.uri for p in master.playlists] == ["240p/index.m3u8"]
    assert [(m.type, m.uri, m.language, m.name) for m in master.media] == [
        ("AUDIO", None, "en", "English"), ("AUDIO", "audio/und/index.m3u8", "und", "English (2)"),
        ("SUBTITLES", "subs/de/index.m3u8", "und", escaping.display_name(HOSTILE))]
    for uri in ("http://evil.example/x.m3u8", "../../other/index.m3u8", "/abs.m3u8", 'a"b.m3u8', "a\nb.m3u8"):
        with pytest.raises(ValueError):
            escaping.hls_uri(uri)


def test_cue_text_cannot_start_a_cue_or_a_block():
    """A sidecar cue whose text holds a timing line and a whitespace-only line: one cue comes back."""
    cues = [Cue(1.0, 2.0, "Hello\n00:00:00.000 --> 00:09:00.000\n \nInjected")]
    [document] = segment_cues(cues, [6.0], 0)
    reread = parse_captions(document.replace("X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n", ""))
    assert [(c.start, c.end) for c in reread] == [(1.0, 2.0)]
    assert reread[0].text == "Hello\n00:00:00.000 --&gt; 00:09:00.000\nInjected"


@pytest.mark.parametrize("filename", ['a"b.mp4', "a\r\nSet-Cookie: x=1.mp4", "Été; filename=x.exe.mp4",
                                      "a\\\";.mp4", "%22.mp4", "日本.mp3"])
def test_content_disposition_has_exactly_its_two_names(filename):
    """RFC 6266: ``attachment``, a quoted ASCII fallback and the percent-encoded UTF-8 name, nothing else."""
    header = content_disposition(filename)
    kind, fallback, utf8 = header.split("; ")
    assert kind == "attachment" and "\r" not in header and "\n" not in header
    assert re.fullmatch(r'filename="[A-Za-z0-9 ._()-]+"', fallback), fallback
    assert re.fullmatch(r"filename\*=UTF-8''[A-Za-z0-9%._~-]+", utf8), utf8
    assert unquote(utf8.split("''", 1)[1]) == escaping.one_line(filename, 200)


@pytest.mark.parametrize("caption", [
    {"source": "s3://vodflow/uploads/a.srt", "language": "en", "name": 'Cap "x",URI="http://evil.example/c"'},
    {"source": "s3://vodflow/uploads/a.srt", "language": "en", "name": "two\nlines"},
    {"source": "s3://vodflow/uploads/a.srt", "language": "en", "name": "sep\u2028arated"},
    {"source": "s3://vodflow/uploads/a.srt", "language": "en", "name": ""},
    {"source": "s3://vodflow/uploads/a.srt", "language": 'en"'},
    {"source": "s3://vodflow/uploads/a.srt", "language": "en-" + "-".join(["abc"] * 12)},
])
def test_a_caption_name_or_language_that_cannot_be_written_is_refused(caption):
    """The schema Airflow's Params check at trigger (HTTP 400) and the plugin's check_fields both refuse it."""
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([caption], SCHEMAS["captions"])
    with pytest.raises(RequestError):
        check_fields({"captions": [caption]})


def test_a_caption_name_with_an_apostrophe_and_a_regional_language_passes():
    check_fields({"captions": [{"source": "s3://vodflow/uploads/a.srt", "language": "fr-CA",
                                "name": "Director's commentary, français"}]})


def test_a_download_is_titled_with_one_line_of_text():
    """The title tag ffmpeg writes into MP4/M4A/MP3 downloads (a title from a file name may hold U+2028 or NEL)."""
    from vodflow.media.package.downloads import mp4_command

    args = mp4_command(["seg_00000.ts"], "out.mp4", "Talk\u2028part\x85two\u202e")
    assert args[args.index("-metadata") + 1] == "title=Talk part two"


def test_the_dags_params_refuse_a_quoted_caption_name():
    """What Airflow checks at trigger (the DAG's Params from SCHEMAS; a failure is the REST API's 400)."""
    from airflow.sdk import Param
    from airflow.sdk.definitions.param import ParamsDict
    from airflow.sdk.exceptions import ParamValidationError

    from vodflow.request import DEFAULTS

    def params(captions: list[dict]) -> ParamsDict:
        built = ParamsDict({name: Param(DEFAULTS.get(name), **schema) if name in DEFAULTS else Param(**schema)
                            for name, schema in SCHEMAS.items()})
        built.update({"source": "s3://vodflow/uploads/a.mp4", "captions": captions})
        return built

    caption = {"source": "s3://vodflow/uploads/a.srt", "language": "en"}
    params([{**caption, "name": "English (SDH)"}]).validate()
    with pytest.raises(ParamValidationError):
        params([{**caption, "name": 'Cap "x",URI="http://evil.example/c"'}]).validate()
