"""Which output frames become pictures, and which work item renders each (pure)."""

from __future__ import annotations

import re

import ffmpeg
import pytest

from vodflow.media.encode.chunks import plan_chunks
from vodflow.media.pictures.thumbnails import (
    POSTER_CANDIDATE_PATTERN,
    POSTER_CANDIDATES,
    POSTER_STATS,
    Candidate,
    choose_poster,
    pick_poster,
    picture_outputs,
    plan_pictures,
)


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
            if args[-1].endswith(POSTER_CANDIDATE_PATTERN):
                posters += 1
                continue
            graph = args[args.index("-filter_complex") + 1]
            local = [int(n) for n in re.findall(r"eq\(n\\,(\d+)\)", graph)]
            number = int(args[args.index("-start_number") + 1])
            seen += [(number + i, chunk.first_frame + n) for i, n in enumerate(local)]
    assert posters == 1
    assert seen == [(i + 1, n) for i, n in enumerate(plan.thumb_frames)]


@pytest.mark.parametrize("duration,fps,chunk_seconds", [
    (58.0, "30", 6),  # poster at 5.8 s: the candidates 5.8-7.8 s straddled the 6 s seam
    (100.0, "30", 12), (100.0, "30000/1001", 12),  # poster at 10 s: the last candidate on the 12 s seam
    (59.0, "25", 6), (61.0, "24000/1001", 6), (3600.0, "30", 6), (45.0, "60", 6), (30.5, "30", 6),
])
def test_every_poster_candidate_falls_in_the_chunk_holding_the_poster(duration, fps, chunk_seconds):
    """One encode writes the candidates the poster is chosen from: a window across a seam was cut to the
    candidates before it (one, for 58 s in 6 s chunks), and the poster picked from one frame."""
    chunks = plan_chunks(duration, fps, chunk_seconds)
    plan = plan_pictures(1280, 720, duration, fps, [c.first_frame for c in chunks])
    candidates = [plan.poster_frame + plan.poster_stride * i for i in range(POSTER_CANDIDATES)]
    holding = [c for c in chunks if c.first_frame <= plan.poster_frame]
    chunk = holding[-1]
    end = chunk.first_frame + chunk.frames if chunk.frames is not None else float("inf")
    assert all(chunk.first_frame <= n < end for n in candidates), (candidates, chunk)
    assert plan.poster_stride == plan_pictures(1280, 720, duration, fps).poster_stride  # still half a second
    video = ffmpeg.input("in.mp4")["v:0"]
    rendering = [c for c in chunks if any(o.get_args()[-1].endswith(POSTER_CANDIDATE_PATTERN) for o in
                                          picture_outputs(video, plan, "/out", first_frame=c.first_frame,
                                                          frames=c.frames))]
    assert rendering == [chunk]


def test_a_poster_window_inside_one_chunk_stays_where_it_was():
    chunks = plan_chunks(200.0, "30", 30)
    assert plan_pictures(1280, 720, 200.0, "30", [c.first_frame for c in chunks]) == plan_pictures(
        1280, 720, 200.0, "30")


def test_a_stretch_without_pictures_adds_no_output():
    plan = plan_pictures(1280, 720, 200.0, "30")
    video = ffmpeg.input("in.mp4")["v:0"]
    assert picture_outputs(video, plan, "/out", first_frame=10**6, frames=10) == []


def candidate(n: int, luma: float, low: float, high: float, u: float = 128, v: float = 128) -> Candidate:
    return Candidate(f"poster-candidate-{n}.jpg", luma, low, high, u, v)


def test_a_black_or_flat_candidate_is_never_the_poster_when_a_picture_exists():
    black = [candidate(i, 16, 16, 16) for i in (1, 2, 3)]  # the majority, as at the start of a short clip
    blank = candidate(4, 200, 198, 202)  # a white slate: bright, but flat
    picture = candidate(5, 110, 40, 190)
    assert pick_poster([*black, blank, picture]) is picture
    assert pick_poster([candidate(1, 24, 16, 60), picture]) is picture  # a fade: near-black


def test_the_poster_is_the_most_representative_of_the_good_candidates():
    """The one closest to all the others (an outlier — a flash, a cut to another scene — is not)."""
    usual = [candidate(1, 100, 40, 170), candidate(2, 104, 42, 172), candidate(3, 102, 41, 171)]
    assert pick_poster(usual) is usual[2]
    flash = candidate(4, 190, 120, 235)
    assert pick_poster([flash, *usual]) in usual


def test_with_only_dark_or_flat_candidates_the_most_detailed_one_is_chosen():
    assert pick_poster([candidate(1, 16, 16, 16), candidate(2, 20, 16, 30), candidate(3, 16, 16, 17)]).path \
        == "poster-candidate-2.jpg"
    black = [candidate(i, 16, 16, 16) for i in (1, 2)]
    assert pick_poster(black) is black[0]  # a black video: its first candidate


def test_choose_poster_keeps_one_picture_and_removes_the_candidates(tmp_path):
    stats = ""
    for n, (luma, low, high) in enumerate([(16, 16, 16), (16, 16, 16), (120, 40, 200)], start=1):
        (tmp_path / f"poster-candidate-{n}.jpg").write_bytes(f"jpeg {n}".encode())
        stats += (f"frame:{n - 1}    pts:{n}    pts_time:{n}\nlavfi.signalstats.YMIN=16\n"
                  f"lavfi.signalstats.YLOW={low}\nlavfi.signalstats.YAVG={luma}\nlavfi.signalstats.YHIGH={high}\n"
                  "lavfi.signalstats.UAVG=128\nlavfi.signalstats.VAVG=128\n")
    (tmp_path / POSTER_STATS).write_text(stats)
    (tmp_path / "001.jpg").write_bytes(b"thumbnail")
    assert choose_poster(str(tmp_path)) == str(tmp_path / "poster.jpg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["001.jpg", "poster.jpg"]
    assert (tmp_path / "poster.jpg").read_bytes() == b"jpeg 3"
    assert choose_poster(str(tmp_path)) is None  # a chunk without the candidates: nothing to do


def test_unreadable_statistics_still_leave_a_poster(tmp_path):
    for n in (1, 2, 3):
        (tmp_path / f"poster-candidate-{n}.jpg").write_bytes(f"jpeg {n}".encode())
    (tmp_path / POSTER_STATS).write_text("frame:0\n")  # cut short: fewer frames than pictures
    assert choose_poster(str(tmp_path)) == str(tmp_path / "poster.jpg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["poster.jpg"]
    assert (tmp_path / "poster.jpg").read_bytes() == b"jpeg 2"  # the middle one
