"""A source's audio tracks: which one is the main track, and what the others become (HLS alternate audio
renditions, ``EXT-X-MEDIA TYPE=AUDIO``). Pure: ffprobe's stream dicts in, value objects out.

The main track is the one the source flags default (the first such), else the first: a player of the source
would play it, so the video variants carry it muxed. Every other track is an alternate audio rendition of its
own under ``hls/audio/<lang>/``, in one audio group that every variant names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vodflow.media import escaping

AUDIO_GROUP = "aud"
ALTERNATE_AUDIO_KBPS = 128
# ISO 639-2 (what containers tag) → the ISO 639-1 subtag BCP 47 prefers (what HLS LANGUAGE carries).
ISO_639_1 = {"eng": "en", "fra": "fr", "fre": "fr", "deu": "de", "ger": "de", "spa": "es", "ita": "it",
             "por": "pt", "nld": "nl", "dut": "nl", "rus": "ru", "jpn": "ja", "zho": "zh", "chi": "zh",
             "kor": "ko", "ara": "ar", "hin": "hi", "pol": "pl", "swe": "sv", "tur": "tr"}
LANGUAGE_NAMES = {"en": "English", "fr": "Français", "de": "Deutsch", "es": "Español", "it": "Italiano",
                  "pt": "Português", "nl": "Nederlands", "ru": "Русский", "ja": "日本語", "zh": "中文",
                  "ko": "한국어", "ar": "العربية", "hi": "हिन्दी", "pl": "Polski", "sv": "Svenska", "tr": "Türkçe"}
UNDETERMINED = escaping.UNDETERMINED


@dataclass(frozen=True)
class AudioTrack:
    index: int  # position among the source's audio streams (ffmpeg's ``a:N``)
    language: str  # BCP 47, "und" when untagged or not a tag
    title: str  # what a player lists: one line, no '"', at most 64 characters (``escaping.display_name``)
    default: bool  # flagged default in the source


@dataclass(frozen=True)
class AlternateAudio:
    """An audio track published as an alternate rendition: ``name`` is its folder under ``hls/audio/``."""

    name: str
    track: AudioTrack


def language_tag(raw: str | None) -> str:
    """A container's or a request's language tag as HLS LANGUAGE carries it: a well-formed BCP 47 tag (ISO 639-2
    codes as their 639-1 subtag, conventional case), else ``und``. Tags are read here, once, for every track
    (``escaping.language_tag``)."""
    primary, *subtags = escaping.language_tag((raw or "").strip()).lower().split("-")
    if primary in ("und", "unk", "mis", "mul", "zxx"):
        return UNDETERMINED
    # RFC 5646 2.1.1's conventional case: a region upper case (en-US), a script title case (zh-Hant).
    return "-".join([ISO_639_1.get(primary, primary), *(t.upper() if len(t) == 2 else t.title() if len(t) == 4
                                                         else t for t in subtags)])


def track_title(raw: object, fallback: str) -> str:
    """A track's title as a player may list it (``escaping.display_name``): metadata is hostile, and this is the
    one place track titles are read from it."""
    return escaping.display_name(raw or "", fallback=fallback)


def parse_audio_tracks(streams: list[dict[str, Any]]) -> tuple[AudioTrack, ...]:
    """Every audio stream of ffprobe's ``streams``, in order."""
    tracks = []
    for index, stream in enumerate(s for s in streams if s.get("codec_type") == "audio"):
        tags = {k.lower(): v for k, v in (stream.get("tags") or {}).items()}
        language = language_tag(tags.get("language"))
        fallback = LANGUAGE_NAMES.get(language, f"Audio {index + 1}" if language == UNDETERMINED else language)
        title = track_title(tags.get("title") or tags.get("handler_name"), fallback)
        if title.lower() in ("soundhandler", "sound handler", "audio"):
            title = fallback
        tracks.append(AudioTrack(index=index, language=language, title=title,
                                 default=bool((stream.get("disposition") or {}).get("default"))))
    return tuple(tracks)


def main_track(tracks: tuple[AudioTrack, ...]) -> AudioTrack | None:
    return next((t for t in tracks if t.default), tracks[0] if tracks else None)


def alternate_audio(tracks: tuple[AudioTrack, ...]) -> list[AlternateAudio]:
    """The tracks besides the main one, each with a folder named by its language (``en``, ``en-2``, …)."""
    main = main_track(tracks)
    taken: set[str] = set()
    alternates = []
    for track in tracks:
        if main is None or track.index == main.index:
            continue
        name, n = track.language, 1
        while name in taken:
            n += 1
            name = f"{track.language}-{n}"
        taken.add(name)
        alternates.append(AlternateAudio(name=name, track=track))
    return alternates


@dataclass(frozen=True)
class SubtitleTrack:
    index: int  # position among the source's subtitle streams (ffmpeg's ``s:N``)
    codec: str
    language: str
    title: str

    @property
    def text(self) -> bool:
        """Text subtitles can become WebVTT; bitmap ones (PGS, DVB) cannot."""
        return self.codec in TEXT_SUBTITLE_CODECS


TEXT_SUBTITLE_CODECS = {"subrip", "srt", "ass", "ssa", "mov_text", "webvtt", "text", "microdvd", "subviewer"}


def parse_subtitle_tracks(streams: list[dict[str, Any]]) -> tuple[SubtitleTrack, ...]:
    tracks = []
    for index, stream in enumerate(s for s in streams if s.get("codec_type") == "subtitle"):
        tags = {k.lower(): v for k, v in (stream.get("tags") or {}).items()}
        language = language_tag(tags.get("language"))
        title = track_title(tags.get("title"), LANGUAGE_NAMES.get(language, f"Subtitles {index + 1}"))
        tracks.append(SubtitleTrack(index=index, codec=str(stream.get("codec_name") or "unknown"),
                                    language=language, title=title))
    return tuple(tracks)


def unique_names(languages: list[str]) -> list[str]:
    """Folder names by language, ``en``, ``en-2``, … in order."""
    return escaping.numbered_apart(languages, lambda language, n: f"{language}-{n}")
