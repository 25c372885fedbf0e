"""``SourceInfo``: what the planner and the encoder know about a source, apart from how it was probed.

A leaf (only the track model under it), so ffmpeg helpers, timestamps, the catalog and the pipeline can name a
source without importing ffprobe's parsing, and ``probe`` can build one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

from vodflow.media.source.tracks import AudioTrack, SubtitleTrack, main_track

AUDIO_OVERHANG = 0.1  # seconds of sound after the picture's end that are not worth calling the video shorter


@dataclass(frozen=True)
class SourceInfo:
    """What the planner and the encoder need to know about a source. Sizes are display sizes."""

    duration: float
    width: int  # after rotation and sample aspect ratio: what a viewer sees
    height: int
    fps: str  # output-ready frame rate as a fraction string, e.g. "30000/1001"
    vfr: bool
    video_codec: str
    pix_fmt: str
    bit_depth: int
    hdr: bool
    interlaced: bool
    rotation: int
    has_audio: bool
    audio_codec: str | None
    audio_channels: int
    format_name: str
    size_bytes: int
    bitrate: int
    # The video's timestamps jump (two captures in one MPEG-TS, a recorder restarted): never cut in chunks,
    # since a seek by time is ambiguous; ``duration`` is then what the packets add up to, not what ffprobe said.
    discontinuous: bool = False
    # Where the video ends on the timeline (seconds from the file's start): audio is padded or cut to it.
    video_end: float | None = None
    audio_tracks: tuple[AudioTrack, ...] = ()  # every audio stream; the main one is muxed into the variants
    subtitle_tracks: tuple[SubtitleTrack, ...] = ()

    @property
    def audio_index(self) -> int:
        """The main audio track's position among the audio streams (``a:N``)."""
        main = main_track(self.audio_tracks)
        return main.index if main else 0

    @property
    def picture_end(self) -> float:
        """How long the published video is: the picture's end, when sound runs on after it; else the duration."""
        if self.video_end is not None and 0 < self.video_end < self.duration - AUDIO_OVERHANG:
            return self.video_end
        return self.duration

    @property
    def fps_float(self) -> float:
        return float(Fraction(self.fps))

    @property
    def portrait(self) -> bool:
        return self.height > self.width

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceInfo:
        tracks = tuple(AudioTrack(**t) for t in data.get("audio_tracks", ()))
        subtitles = tuple(SubtitleTrack(**t) for t in data.get("subtitle_tracks", ()))
        return cls(**{**data, "audio_tracks": tracks, "subtitle_tracks": subtitles})
