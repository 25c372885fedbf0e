"""``SourceInfo``: what the planner and the encoder know about a source, apart from how it was probed.

A leaf (only the track model under it), so ffmpeg helpers, timestamps, the catalog and the pipeline can name a
source without importing ffprobe's parsing, and ``probe`` can build one.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from vodflow.codec import Coded
from vodflow.media.source.tracks import AudioTrack, SubtitleTrack, main_track

AUDIO_OVERHANG = 0.1  # seconds of sound after the picture's end that are not worth calling the video shorter
# The slowest output rate: a still picture (music over a cover, a slideshow at 0.1 fps) is shown again at this rate,
# so every 2 s keyframe (4 frames) and every 6 s segment has a picture of its own and a player gets a first frame at
# once. A source slower than this is raised by a whole multiple (0.1 fps → 2, 1.5 → 3), so every source frame is
# shown the same number of times; changes of picture land within 0.5 s of their time. Not higher: every frame is
# encoded, for nothing but a repeat (120 s of a 1080p still, 4 renditions: 79 s at 6 fps, 42 s at 2), and real
# low-rate video (5 fps CCTV, 12 fps animation) is left as it is.
MIN_OUTPUT_FPS = Fraction(2)
# A source showing fewer pictures a second than this is a still picture or a slideshow (music over a cover): its
# last picture stays up while the sound runs, instead of the sound being cut where the picture's stream ends.
STILL_BELOW_FPS = Fraction(1)


@dataclass(frozen=True)
class MasteringDisplay(Coded):
    """SMPTE ST 2086 mastering display colour volume, in natural units: CIE 1931 xy chromaticities (0–1) of the
    display's red, green and blue primaries and its white point, and its luminance range in cd/m² (nits).
    Encoders want their own fixed-point units (``media.encode.hdr`` converts)."""

    red: tuple[float, float]
    green: tuple[float, float]
    blue: tuple[float, float]
    white_point: tuple[float, float]
    max_luminance: float
    min_luminance: float


@dataclass(frozen=True)
class ContentLight(Coded):
    """CTA-861.3 content light level, in cd/m²: the brightest pixel (MaxCLL) and brightest frame average
    (MaxFALL) of the whole video."""

    max_cll: int
    max_fall: int


@dataclass(frozen=True)
class SourceInfo(Coded):
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
    # What a job must process: the decoded picture (its coded size: a sample aspect ratio shrinks what is shown,
    # not what is decoded) at the larger of the source's and the output's frame rate.
    coded_pixels: int = 0
    decode_fps: float = 0.0
    streams: int = 0  # streams in the file, attachments (fonts) aside
    # The longest run between two keyframes, where a seek lands on any packet rather than on a keyframe (MPEG-TS,
    # MPEG-PS): a chunk's read must start that much earlier to meet a keyframe before its first frame.
    keyframe_interval: float | None = None
    # Where the container's clock starts (ffprobe's format start time): the origin of the output timeline.
    start_time: float = 0.0
    still: bool = False  # a still picture or slideshow (``STILL_BELOW_FPS``): its last picture is held to the end
    # The picture's colour as ffprobe names it ("" when the file does not say): ``color_transfer`` decides HDR
    # (smpte2084 = PQ, arib-std-b67 = HLG); ``color_matrix`` is ffprobe's ``color_space``. And the static HDR
    # metadata, from the container or the first frame (HEVC SEI, AV1 metadata OBUs); None when absent or unusable.
    color_transfer: str = ""
    color_primaries: str = ""
    color_matrix: str = ""
    color_range: str = ""
    mastering_display: MasteringDisplay | None = None
    content_light: ContentLight | None = None

    @property
    def audio_index(self) -> int:
        """The main audio track's position among the audio streams (``a:N``)."""
        main = main_track(self.audio_tracks)
        return main.index if main else 0

    @property
    def picture_end(self) -> float:
        """How long the published video is: the picture's end, when sound runs on after it (but a still picture
        stays up while the sound runs); else the duration."""
        if not self.still and self.video_end is not None and 0 < self.video_end < self.duration - AUDIO_OVERHANG:
            return self.video_end
        return self.duration

    @property
    def pixel_rate(self) -> float:
        """Pixels decoded (or made, for a still picture shown again) per second of the source."""
        return self.coded_pixels * self.decode_fps

    @property
    def fps_float(self) -> float:
        return float(Fraction(self.fps))

    @property
    def portrait(self) -> bool:
        return self.height > self.width
