"""Which output frames become pictures, and which work item renders each (pure)."""

from __future__ import annotations

import re

import ffmpeg
import pytest

from vodflow.media.chunks import plan_chunks
from vodflow.media.thumbnails import POSTER_CANDIDATES, picture_outputs, plan_pictures


@pytest.mark.parametrize("duration,fps", [(1.0, "30"), (10.0, "30000/1001"), (95.5, "25"), (3600.0, "24000/1001")])
def test_every_planned_frame_lies_inside_the_video(duration, fps):
    from fractions import Fraction

    plan = plan_pictures(1920, 1080, duration, fps)
    frames = int(duration * Fraction(fps))
    last_candidate = plan.poster_frame + plan.poster_stride * (POSTER_CANDIDATES - 1)
    assert plan.poster_frame >= 0 and last_candidate < frames
    assert all(0 <= n < frames for n in plan.thumb_frames)
    assert list(plan.thumb_frames) == sorted(set(plan.thumb_frames)), "distinct instants, in order"
    assert len(plan.thumb_frames) == min(10, max(1, int(duration // 2)))


def test_the_poster_is_chosen_near_ten_percent_capped_at_ten_seconds():
    assert plan_pictures(1280, 720, 30.0, "30").poster_frame == 90  # 3 s
    assert plan_pictures(1280, 720, 600.0, "30").poster_frame == 300  # 10 s, not 60 s


def test_chunks_render_each_picture_exactly_once():
    """Split into chunks, every thumbnail is rendered by exactly one chunk, with its global number."""
    plan = plan_pictures(1280, 720, 200.0, "30")
    chunks = plan_chunks(200.0, "30", 30)
    seen: list[tuple[int, int]] = []
    posters = 0
    for chunk in chunks:
        video = ffmpeg.input("in.mp4")["v:0"]
        outputs = picture_outputs(video, plan, "/out", first_frame=chunk.first_frame, frames=chunk.frames)
        for output in outputs:
            args = output.get_args()
            if args[-1].endswith("poster.jpg"):
                posters += 1
                continue
            graph = args[args.index("-filter_complex") + 1]
            local = [int(n) for n in re.findall(r"eq\(n\\,(\d+)\)", graph)]
            number = int(args[args.index("-start_number") + 1])
            seen += [(number + i, chunk.first_frame + n) for i, n in enumerate(local)]
    assert posters == 1
    assert seen == [(i + 1, n) for i, n in enumerate(plan.thumb_frames)]


def test_a_stretch_without_pictures_adds_no_output():
    plan = plan_pictures(1280, 720, 200.0, "30")
    video = ffmpeg.input("in.mp4")["v:0"]
    assert picture_outputs(video, plan, "/out", first_frame=10**6, frames=10) == []
