"""Storyboard: small tiles of the picture every N seconds, laid out on sprite sheets, and a WebVTT index mapping
each stretch of time to its tile (``sprite_000.jpg#xywh=x,y,w,h``), what players show when hovering the timeline.
Made from the smallest encoded rendition (a cheap decode). No Airflow, S3 or database.

N is chosen from the duration so a long video stays small: the smallest of ``INTERVALS`` giving at most
``MAX_TILES`` tiles (30 s: every second; an hour: every 60 s).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import ffmpeg

from vodflow.errors import MediaToolError
from vodflow.media.encode.diagnose import classify_failure
from vodflow.media.encode.ffmpeg import ffmpeg_command
from vodflow.media.encode.process import run_ffmpeg

TILE_WIDTH = 160
COLUMNS, ROWS = 5, 5  # 25 tiles per sheet: 800 px wide at 160 px tiles
MAX_TILES = 100
INTERVALS = (1, 2, 5, 10, 15, 30, 60, 120, 300)
SPRITE_PATTERN = "sprite_%03d.jpg"
VTT_NAME = "storyboard.vtt"
_TILE_PATTERN = "tile_%05d.jpg"


@dataclass(frozen=True)
class StoryboardPlan:
    interval: int  # seconds per tile
    tile_width: int
    tile_height: int
    columns: int = COLUMNS
    rows: int = ROWS

    @property
    def per_sheet(self) -> int:
        return self.columns * self.rows


def plan_storyboard(duration: float, width: int, height: int) -> StoryboardPlan:
    """The interval for this duration and a tile of ``TILE_WIDTH`` with the picture's aspect (even height)."""
    interval = next((n for n in INTERVALS if math.ceil(duration / n) <= MAX_TILES),
                    math.ceil(duration / MAX_TILES))
    tile_height = max(2, round(TILE_WIDTH * height / width / 2) * 2)
    return StoryboardPlan(interval=interval, tile_width=TILE_WIDTH, tile_height=tile_height)


def tiles_command(segments: list[str], out_dir: str, plan: StoryboardPlan, duration: float) -> list[str]:
    """One tile per interval (the frame at its start, timestamps from zero), each a small JPEG."""
    video = ffmpeg.input("concat:" + "|".join(segments), protocol_whitelist="concat,file", f="mpegts")["v:0"]
    tiles = (video.filter("setpts", "PTS-STARTPTS").filter("fps", fps=f"1/{plan.interval}", round="down")
             .filter("scale", plan.tile_width, plan.tile_height))
    count = math.ceil(duration / plan.interval)
    return ffmpeg_command(ffmpeg.output(tiles, os.path.join(out_dir, _TILE_PATTERN), start_number=0,
                                        **{"frames:v": count, "q:v": 5}))


def sheets_command(tiles_dir: str, out_dir: str, plan: StoryboardPlan) -> list[str]:
    """The tiles, in order, laid out ``columns`` × ``rows`` per sheet (the last sheet may be partly empty)."""
    tiles = ffmpeg.input(os.path.join(tiles_dir, _TILE_PATTERN), f="image2", start_number=0)
    return ffmpeg_command(ffmpeg.output(tiles.filter("tile", f"{plan.columns}x{plan.rows}"),
                                        os.path.join(out_dir, SPRITE_PATTERN), start_number=0, **{"q:v": 4}))


def make_storyboard(segments: list[str], out_dir: str, plan: StoryboardPlan, duration: float
                    ) -> tuple[list[str], str]:
    """Sprite sheets and the WebVTT index in ``out_dir``: (sheet paths, VTT path)."""
    tiles_dir = os.path.join(out_dir, "tiles")
    os.makedirs(tiles_dir, exist_ok=True)
    _run(tiles_command(segments, tiles_dir, plan, duration), out_dir, duration)
    count = len(os.listdir(tiles_dir))
    if not count:
        raise MediaToolError("the storyboard decode made no tile")
    _run(sheets_command(tiles_dir, out_dir, plan), out_dir, duration)
    sheets = sorted(os.path.join(out_dir, n) for n in os.listdir(out_dir) if n.startswith("sprite_"))
    vtt = os.path.join(out_dir, VTT_NAME)
    with open(vtt, "w", encoding="utf-8") as f:
        f.write(storyboard_vtt(plan, duration, count))
    return sheets, vtt


def _run(args: list[str], out_dir: str, duration: float) -> None:
    result = run_ffmpeg(args, duration=duration, timeout=120.0 + duration)
    if result.returncode != 0:
        raise classify_failure(result, out_dir)


def storyboard_vtt(plan: StoryboardPlan, duration: float, tiles: int) -> str:
    """Cue i covers [i·N, (i+1)·N) and shows tile i; the last cue runs to the end, so the cues cover the video."""
    lines = ["WEBVTT", ""]
    for i in range(tiles):
        start, end = i * plan.interval, duration if i == tiles - 1 else min((i + 1) * plan.interval, duration)
        if start >= duration:
            break
        place = i % plan.per_sheet
        x, y = (place % plan.columns) * plan.tile_width, (place // plan.columns) * plan.tile_height
        sprite = SPRITE_PATTERN % (i // plan.per_sheet)
        lines += [f"{_timestamp(start)} --> {_timestamp(end)}",
                  f"{sprite}#xywh={x},{y},{plan.tile_width},{plan.tile_height}", ""]
    return "\n".join(lines)


def _timestamp(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"
