"""The measurement model: a finished rendition as its encode measured it from its own files (segments, I-frames,
codecs), which playlists, manifests, downloads, the per-title ladder and the pipeline all read. A leaf.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vodflow.codec import Coded

MEDIA_PLAYLIST = "index.m3u8"
IFRAME_PLAYLIST = "iframes.m3u8"


@dataclass(frozen=True)
class Segment:
    uri: str  # relative to the rendition's playlist
    duration: float
    size: int  # bytes


@dataclass(frozen=True)
class IFrame:
    """A keyframe inside a segment, for the I-frame (trick play) playlist."""

    uri: str
    offset: int
    length: int
    duration: float


@dataclass
class MeasuredRendition(Coded):
    """A finished rendition as the transcode task measured it from its own output files."""

    name: str
    width: int
    height: int
    frame_rate: str  # fraction string
    codecs: str  # e.g. "avc1.64001f,mp4a.40.2"
    video_codec: str  # e.g. "avc1.64001f"
    segments: list[Segment]
    iframes: list[IFrame] = field(default_factory=list)
    first_pts: int = 0  # 90 kHz PTS of the first frame: WebVTT's X-TIMESTAMP-MAP ties local time 0 to it

    @property
    def playlist_uri(self) -> str:
        return f"{self.name}/{MEDIA_PLAYLIST}"

    @property
    def iframe_playlist_uri(self) -> str:
        return f"{self.name}/{IFRAME_PLAYLIST}"

    @property
    def bytes(self) -> int:
        return sum(s.size for s in self.segments)

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.segments)


@dataclass
class _TrackRendition:
    """What audio and subtitle renditions share: a name (their folder), a language, a title, their segments."""

    name: str
    language: str
    title: str
    segments: list[Segment] = field(default_factory=list)


@dataclass
class MeasuredAudio(_TrackRendition):
    """An audio rendition of the audio group: the main track (muxed in every variant, so no playlist of its own:
    ``segments`` empty) or an alternate track with its own audio-only segments under ``audio/<name>/``."""

    @property
    def in_variants(self) -> bool:
        return not self.segments

    @property
    def playlist_uri(self) -> str:
        return f"audio/{self.name}/{MEDIA_PLAYLIST}"


@dataclass
class MeasuredSubtitles(_TrackRendition):
    """A WebVTT subtitle rendition under ``subs/<name>/``, segmented on the video's segments; ``auto``: recognised
    speech (automatic captions), never the default over the source's own."""

    auto: bool = False

    @property
    def playlist_uri(self) -> str:
        return f"subs/{self.name}/{MEDIA_PLAYLIST}"
