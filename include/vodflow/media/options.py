"""The media layer's configuration value types, which ``settings`` builds and media modules take.

A leaf (it imports nothing from vodflow), so ``settings`` can name them without importing ffmpeg, probing or the
per-title ladder, and media modules without importing ``settings``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EncoderSettings:
    preset: str = "veryfast"
    keyframe_seconds: int = 2
    segment_seconds: int = 6
    # Early playback: the first segment is also cut into pieces this long (media.encode.segmented.EarlyGrid), so a
    # player can start once the first is written; segment_seconds: no lead-in.
    early_lead_seconds: int = 2
    threads: int = 0  # 0: let x264 decide
    timeout_base: float = 600.0
    timeout_per_source_second: float = 6.0

    def timeout_for(self, duration: float) -> float:
        """Sized from the source duration: a stuck encode is stopped, a long one is not."""
        return self.timeout_base + self.timeout_per_source_second * duration


@dataclass(frozen=True)
class Limits:
    min_duration: float = 1.0
    max_duration: float = 4 * 3600.0
    max_size_bytes: int = 20 * 1024**3
    min_dimension: int = 16
    max_dimension: int = 8192
    # Each limit above alone lets a small file demand unbounded work (8192x8192 at 60 fps for 4 h is a few tens
    # of MB): the decode budget bounds their product, and the track counts bound the encodes besides the video
    # (each audio track is an AAC encode of its own, each text subtitle a conversion).
    max_decode_pixels: float = 8e12
    max_audio_tracks: int = 16
    max_subtitle_tracks: int = 32
    max_streams: int = 64


@dataclass(frozen=True)
class QualityPolicy:
    """What the per-title ladder aims at (settings ``vmaf_targets``, ``vmaf_ceiling``…)."""

    targets: tuple[float, ...] = (95.0, 88.0, 78.0, 68.0, 58.0, 48.0, 40.0)  # VMAF per rung, from the top
    ceiling: float = 1.5  # at most this × the fixed ladder's rate
    # At most this much below the fixed ladder's predicted VMAF when saving bits (bench/per_title.py: the probe
    # is ~0.5 optimistic at a third of the fixed rate against the fixed rate, so 0.5 lands at about −1).
    max_drop: float = 0.5
    min_gain: float = 3.0  # VMAF a doubling of the rate must buy for more bits to be worth it
    jnd: float = 6.0  # one just-noticeable difference
    # Rate × this for what a CRF trial reached: the constrained-VBR encode of a whole video lands below a CRF
    # encode of its size (bench/per_title.py: the same VMAF needed ~1.2× the CRF trial's rate).
    headroom: float = 1.2

    def target(self, position: int) -> float:
        return self.targets[min(position, len(self.targets) - 1)]


def parse_targets(text: str) -> tuple[float, ...]:
    """``"95,91,83,72"`` (from the top rung down) as the setting ``vmaf_targets`` gives it."""
    values = tuple(float(part) for part in text.split(",") if part.strip())
    if not values or any(not 0 < v <= 100 for v in values):
        raise ValueError(f"vmaf_targets must be VMAF values in (0, 100], top rung first: {text!r}")
    return values
