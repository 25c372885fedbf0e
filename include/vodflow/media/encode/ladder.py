"""Plan the adaptive-bitrate ladder for a source. Pure: no I/O, no Airflow.

A rung is a bounding box (1920x1080 for 1080p, transposed for portrait sources) and a bitrate for 16:9 at up to
30 fps. The source is scaled to fit each box keeping its aspect ratio; a rung that would need upscaling is
dropped. Bitrates follow Apple's HLS Authoring Specification: Apple's own values for 1080p (6000) and 720p (3000);
480p and 360p keep the spec's rule that adjacent variants differ by a factor of 1.5-2 (2.x), so the default ladder
is a clean 2x staircase 6000/3000/1500/800 kbps instead of jumping from 1500 to Apple's 365 kbps 360p rung.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from vodflow.codec import Coded

# Bump when rungs or encoder settings change in a way that makes re-transcoding worthwhile.
LADDER_VERSION = 1

# Video is constrained VBR: this peak keeps measured peak segment bitrate under 2x the average (Apple 1.30).
MAXRATE_FACTOR = 1.5
BUFSIZE_FACTOR = 2.0
# A source this much larger (in pixels) than the best rung it fills gets an extra rendition at its own size.
NATIVE_MARGIN = 1.25
MIN_VIDEO_KBPS = 150
MIN_SIDE = 16  # a scaled rendition thinner than this is useless (extreme aspect ratios)


@dataclass(frozen=True)
class Rung:
    name: str
    box_width: int  # landscape orientation
    box_height: int
    video_kbps: int
    audio_kbps: int


RUNGS: dict[str, Rung] = {
    rung.name: rung
    for rung in (
        Rung("2160p", 3840, 2160, 16000, 160),
        Rung("1440p", 2560, 1440, 10000, 160),
        Rung("1080p", 1920, 1080, 6000, 128),
        Rung("720p", 1280, 720, 3000, 128),
        Rung("480p", 854, 480, 1500, 128),
        Rung("360p", 640, 360, 800, 96),
        Rung("240p", 426, 240, 400, 64),
    )
}
LADDERS: dict[str, tuple[str, ...]] = {
    "default": ("1080p", "720p", "480p", "360p"),
    "full": ("2160p", "1440p", "1080p", "720p", "480p", "360p", "240p"),
    "mobile": ("720p", "480p", "360p", "240p"),
}


@dataclass(frozen=True)
class Rendition(Coded):
    """One output variant, ready for the encoder."""

    name: str
    width: int
    height: int
    video_kbps: int
    maxrate_kbps: int
    bufsize_kbits: int
    audio_kbps: int  # 0 when the source has no audio
    fps: str  # fraction string, the same for every rendition so keyframes align
    codec: str = "h264"  # media.encode.codecs: h264 renditions are the TS tree; the others CMAF only
    dynamic_range: str = "SDR"  # HLS VIDEO-RANGE: SDR, PQ or HLG (media.encode.hdr)

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass(frozen=True)
class Ladder:
    version: int
    renditions: tuple[Rendition, ...]


def resolve_rungs(ladder: str | list[str] | None) -> list[Rung]:
    """A ladder name ("default", "full", "mobile") or an explicit list of rung names, highest first."""
    names = LADDERS[ladder or "default"] if not isinstance(ladder, list) else ladder
    unknown = [n for n in names if n not in RUNGS]
    if unknown or not names:
        raise ValueError(f"unknown rung(s) {unknown}; known: {sorted(RUNGS)}")
    return sorted({RUNGS[n] for n in names}, key=lambda r: r.box_width * r.box_height, reverse=True)


def even(value: float) -> int:
    return max(2, round(value / 2.0) * 2)


def floor_even(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def fit_within(width: int, height: int, box_long: int, box_short: int) -> tuple[int, int]:
    """Even dimensions of the source scaled to fit a box (transposed for portrait), never upscaled."""
    box_w, box_h = (box_short, box_long) if height > width else (box_long, box_short)
    scale = min(box_w / width, box_h / height, 1.0)
    return min(even(width * scale), floor_even(width)), min(even(height * scale), floor_even(height))


def plan_ladder(width: int, height: int, fps: str, has_audio: bool,
                ladder: str | list[str] | None = "default") -> Ladder:
    """Renditions for a source of display size width x height, highest first. Never upscales."""
    rungs = resolve_rungs(ladder)
    portrait = height > width
    fps_factor = 1.5 if Fraction(fps) > 31 else 1.0
    planned: list[Rendition] = []
    for rung in rungs:
        box_w, box_h = (rung.box_height, rung.box_width) if portrait else (rung.box_width, rung.box_height)
        if min(box_w / width, box_h / height) > 1:
            continue  # the source is smaller than this box: it would be an upscale
        w, h = fit_within(width, height, rung.box_width, rung.box_height)
        if min(w, h) < MIN_SIDE:
            continue
        planned.append(_rendition(rung.name, w, h, rung, box_w * box_h, fps, fps_factor, has_audio))

    src_pixels = width * height
    top_pixels = planned[0].pixels if planned else 0
    skipped_higher = bool(planned) and planned[0].name != rungs[0].name
    if not planned or (skipped_higher and src_pixels >= NATIVE_MARGIN * top_pixels):
        # Between rungs (or below the lowest): keep the source's own resolution as the top rendition.
        w, h = floor_even(width), floor_even(height)
        reference = _nearest_rung_below(rungs, w * h) or rungs[-1]
        box = reference.box_width * reference.box_height
        name = f"{min(w, h)}p"
        if name in {r.name for r in planned}:
            name = f"{w}x{h}"
        planned.insert(0, _rendition(name, w, h, reference, box, fps, fps_factor, has_audio,
                                     cap_kbps=_next_rung_above_kbps(rungs, reference)))
    return Ladder(version=LADDER_VERSION, renditions=tuple(planned))


def _rendition(name: str, w: int, h: int, rung: Rung, box_pixels: int, fps: str, fps_factor: float,
               has_audio: bool, cap_kbps: int | None = None) -> Rendition:
    # Fewer pixels than the 16:9 box (4:3, cinema-scope) need fewer bits; never below half the rung.
    pixel_factor = min(max((w * h) / box_pixels, 0.5), 1.0) if w * h <= box_pixels else (w * h) / box_pixels
    kbps = round(rung.video_kbps * pixel_factor * fps_factor / 10.0) * 10
    if cap_kbps is not None:
        kbps = min(kbps, cap_kbps)
    kbps = max(kbps, MIN_VIDEO_KBPS)
    return Rendition(
        name=name,
        width=w,
        height=h,
        video_kbps=kbps,
        maxrate_kbps=int(kbps * MAXRATE_FACTOR),
        bufsize_kbits=int(kbps * BUFSIZE_FACTOR),
        audio_kbps=rung.audio_kbps if has_audio else 0,
        fps=fps,
    )


def _nearest_rung_below(rungs: list[Rung], pixels: int) -> Rung | None:
    below = [r for r in rungs if r.box_width * r.box_height <= pixels]
    return below[0] if below else None


def _next_rung_above_kbps(rungs: list[Rung], reference: Rung) -> int | None:
    above = [r for r in rungs if r.box_width * r.box_height > reference.box_width * reference.box_height]
    return above[-1].video_kbps if above else None
