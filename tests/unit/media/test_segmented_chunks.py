"""The grid a chunked run's early segments are cut on: exact frames, whatever the rate."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from vodflow.errors import MediaToolError
from vodflow.media.encode.chunks import plan_chunks
from vodflow.media.encode.segmented import (
    EarlyGrid,
    audio_cut_frames,
    audio_piece,
    cut_frames,
    grid_frame,
    lead_in_cuts,
    tee_audio_outputs,
    tee_safe,
)

PLAIN, LEAD_IN = EarlyGrid(6, 6), EarlyGrid(6, 2)


@pytest.mark.parametrize("grid", [PLAIN, LEAD_IN])
@pytest.mark.parametrize("fps", ["30", "30000/1001", "25", "24000/1001", "60"])
def test_chunk_cuts_are_the_whole_videos_grid(fps, grid):
    """Every chunk's cuts, placed at its first frame, are exactly the grid lines of an encode of the whole."""
    planned = plan_chunks(600.0, fps, 30)
    end = math.ceil(600 * Fraction(fps))
    whole = [grid_frame(k, fps, grid) for k in range(1, 110) if grid_frame(k, fps, grid) < end]
    found = []
    for chunk in planned:
        seq = grid.seq_at(chunk.start)
        assert grid_frame(seq, fps, grid) == chunk.first_frame  # a chunk starts on a grid line
        if chunk.index:
            found.append(chunk.first_frame)
        last = chunk.first_frame + chunk.frames if chunk.frames is not None else end
        found += [chunk.first_frame + c for c in cut_frames(chunk.first_frame, last, seq, fps, grid)]
    assert found == whole


def test_the_lead_in_cuts_the_first_segment_in_three_on_the_keyframe_grid():
    assert [LEAD_IN.start(seq) for seq in range(7)] == [0, 2, 4, 6, 12, 18, 24]
    assert [LEAD_IN.seq_at(s) for s in (0, 6, 30)] == [0, 3, 7]  # a chunk at 30 s: VOD segment 5
    assert [LEAD_IN.early_seq(v) for v in range(3)] == [0, 3, 4]
    assert [PLAIN.start(seq) for seq in range(3)] == [0, 6, 12] and PLAIN.seq_at(30) == 5
    assert lead_in_cuts("30000/1001", LEAD_IN) == [60, 120, 180]  # the first frame at or after 2, 4, 6 s
    with pytest.raises(ValueError):
        EarlyGrid(6, 4)


def test_audio_cuts_count_the_priming_packet():
    # 46.875 AAC frames a second: the first at or after 6 s is frame 282 of the timeline, packet 283.
    assert audio_cut_frames(13.0, PLAIN) == [283, 564]
    assert audio_cut_frames(12.0, PLAIN) == [283]  # no empty segment at the very end
    assert audio_cut_frames(13.0, LEAD_IN) == [95, 189, 283, 564]  # 2 s: frame 93.75 → 94, packet 95


@pytest.mark.parametrize("grid", [PLAIN, LEAD_IN])
def test_audio_pieces_cover_the_track(grid):
    count = len(audio_cut_frames(25.0, grid)) + 1
    durations = [audio_piece(seq, "x", grid, 25.0).duration for seq in range(count)]
    assert sum(durations) == pytest.approx(25.0 + 1024 / 48000)  # the priming frame is before 0
    assert durations[-1] == pytest.approx(1.0)


@pytest.mark.parametrize("path", ["/tmp/a:b", "/tmp/a|b", "/tmp/a]b", "/tmp/a'b", "/tmp/a\\b"])
def test_a_path_the_tee_muxer_cannot_take_is_refused(path):
    with pytest.raises(MediaToolError):
        tee_safe(path)


def test_tee_outputs():
    spec = tee_audio_outputs("/w/audio-128k.ts", "/w/audio-segments", [283])
    assert spec == ("[f=mpegts:max_delay=0]/w/audio-128k.ts|[f=segment:segment_format=mpegts:segment_list_type=m3u8:"
                    "max_delay=0:segment_list=/w/audio-segments/index.m3u8:segment_frames=283]"
                    "/w/audio-segments/seg_%05d.ts")
