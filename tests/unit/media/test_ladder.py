"""Ladder planning: never upscale, portrait-aware, even sizes, aspect kept, sensible bitrates."""

from __future__ import annotations

import itertools

import pytest

from vodflow.media.encode.ladder import LADDERS, RUNGS, fit_within, plan_ladder


def sizes(ladder):
    return [(r.name, r.width, r.height) for r in ladder.renditions]


def test_landscape_1080p_gets_the_default_ladder():
    ladder = plan_ladder(1920, 1080, "30", True)
    assert sizes(ladder) == [("1080p", 1920, 1080), ("720p", 1280, 720), ("480p", 854, 480), ("360p", 640, 360)]
    assert [r.video_kbps for r in ladder.renditions] == [6000, 3000, 1500, 800]
    # Apple 2.x: adjacent variants 1.5-2x apart.
    kbps = [r.video_kbps for r in ladder.renditions]
    assert all(1.5 <= a / b <= 2.0 for a, b in itertools.pairwise(kbps))
    assert {r.fps for r in ladder.renditions} == {"30"}
    assert all(32 <= r.audio_kbps <= 160 for r in ladder.renditions)  # Apple 2.9


def test_portrait_gets_the_transposed_ladder():
    ladder = plan_ladder(1080, 1920, "30", True)
    assert sizes(ladder) == [("1080p", 1080, 1920), ("720p", 720, 1280), ("480p", 480, 854), ("360p", 360, 640)]


def test_4k_source_tops_out_at_1080p_on_the_default_ladder_and_2160p_on_full():
    assert sizes(plan_ladder(3840, 2160, "30", True))[0] == ("1080p", 1920, 1080)
    full = plan_ladder(3840, 2160, "30", True, "full")
    assert sizes(full)[0] == ("2160p", 3840, 2160)
    assert len(full.renditions) == len(LADDERS["full"])


def test_never_upscales_720p_source():
    assert sizes(plan_ladder(1280, 720, "25", True)) == [("720p", 1280, 720), ("480p", 854, 480), ("360p", 640, 360)]


def test_tiny_source_still_gets_one_rendition_at_its_own_size():
    ladder = plan_ladder(320, 240, "30", False)
    assert sizes(ladder) == [("240p", 320, 240)]
    assert ladder.renditions[0].audio_kbps == 0
    assert ladder.renditions[0].video_kbps >= 150


def test_odd_dimensions_give_even_renditions():
    ladder = plan_ladder(1281, 721, "30", True)
    assert sizes(ladder)[0] == ("720p", 1280, 720)
    assert all(r.width % 2 == 0 and r.height % 2 == 0 for r in ladder.renditions)


def test_source_between_rungs_keeps_its_own_resolution_on_top():
    ladder = plan_ladder(1000, 562, "30", True)
    assert sizes(ladder) == [("562p", 1000, 562), ("480p", 854, 480), ("360p", 640, 360)]
    top = ladder.renditions[0]
    assert 1500 < top.video_kbps <= 3000  # more than the rung below, never more than the rung above


def test_cinemascope_keeps_full_width():
    ladder = plan_ladder(1920, 804, "24", True)
    assert sizes(ladder)[0] == ("1080p", 1920, 804)
    assert ladder.renditions[0].video_kbps < 6000  # fewer pixels than 16:9, fewer bits


def test_high_frame_rate_gets_more_bits():
    assert plan_ladder(1920, 1080, "60", True).renditions[0].video_kbps == 9000


def test_vbv_constrains_peaks():
    for r in plan_ladder(1920, 1080, "30", True).renditions:
        assert r.maxrate_kbps == int(r.video_kbps * 1.5)
        assert r.bufsize_kbits == int(r.video_kbps * 2)


@pytest.mark.parametrize("width,height", [(w, h) for w in (16, 97, 640, 1279, 1920, 2560, 4096, 7680)
                                          for h in (16, 101, 480, 1080, 1440, 2160, 4320)])
def test_invariants_on_a_grid_of_sizes(width, height):
    ladder = plan_ladder(width, height, "30000/1001", True)
    assert ladder.renditions
    names = [r.name for r in ladder.renditions]
    assert len(names) == len(set(names))
    for r in ladder.renditions:
        assert r.width <= width and r.height <= height, "upscaled"
        assert r.width % 2 == 0 and r.height % 2 == 0
        # aspect kept: one side is within 2 px of what the other side and the source's aspect imply
        assert abs(r.width - r.height * width / height) <= 2 or abs(r.height - r.width * height / width) <= 2
        assert min(r.width, r.height) >= 16 or len(ladder.renditions) == 1
    pixels = [r.pixels for r in ladder.renditions]
    assert pixels == sorted(pixels, reverse=True)


def test_unknown_ladder_is_refused():
    with pytest.raises(ValueError):
        plan_ladder(1920, 1080, "30", True, ["999p"])
    with pytest.raises(KeyError):
        plan_ladder(1920, 1080, "30", True, "nope")


def test_explicit_rung_list():
    assert [r.name for r in plan_ladder(1920, 1080, "30", True, ["360p", "720p"]).renditions] == ["720p", "360p"]
    assert set(RUNGS) >= set(LADDERS["default"])


def test_fit_within_respects_orientation_and_never_upscales():
    assert fit_within(1920, 1080, 1280, 720) == (1280, 720)
    assert fit_within(1080, 1920, 1280, 720) == (720, 1280)
    assert fit_within(640, 360, 1280, 720) == (640, 360)


@pytest.mark.parametrize("duration,count", [(1.5, 1), (8.0, 1), (11.9, 1), (12.0, 3), (3600.0, 3)])
def test_quality_probe_windows_lie_inside_the_source(duration, count):
    from vodflow.media.quality.trials import sample_windows

    windows = sample_windows(duration, 2.0)
    assert len(windows) == count
    assert all(start >= 0 and length > 0 and start + length <= duration + 1e-6 for start, length in windows)


# Chunks ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("duration,seconds,starts,frames", [
    (31.0, 12, [0, 12, 24], [360, 360, None]),
    (26.0, 12, [0, 12], [360, None]),  # a 2 s tail joins the chunk before it
    (3600.0, 60, list(range(0, 3600, 60)), [1800] * 59 + [None]),
    (10.0, 60, [0], [None]),
    (100.0, 10, list(range(0, 96, 12)), [360] * 7 + [None]),  # rounded to the 6 s segment grid
])
def test_chunks_lie_on_the_segment_grid(duration, seconds, starts, frames):
    from vodflow.media.encode.chunks import plan_chunks

    planned = plan_chunks(duration, "30", seconds)
    assert [c.start for c in planned] == starts
    assert [c.frames for c in planned] == frames
    assert all(c.start % 6 == 0 for c in planned)


@pytest.mark.parametrize("fps", ["24000/1001", "30000/1001", "25", "30", "60000/1001"])
def test_chunks_partition_the_output_frame_grid(fps):
    """Each chunk starts on the first frame at or after its start; together they cover every frame once."""
    import itertools
    import math
    from fractions import Fraction

    from vodflow.media.encode.chunks import plan_chunks

    planned = plan_chunks(100.0, fps, 30)
    rate = Fraction(fps)
    assert [c.first_frame for c in planned] == [math.ceil(Fraction(c.start) * rate) for c in planned]
    for before, after in itertools.pairwise(planned):
        assert before.first_frame + before.frames == after.first_frame
    if fps == "30000/1001":
        assert [c.frames for c in planned] == [900, 899, None]  # 30 s is 899.1 frames: none lost at a seam
