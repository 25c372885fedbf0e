"""The grid a chunked run's early segments are cut on: exact frames, whatever the rate."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from vodflow.errors import MediaToolError
from vodflow.media.encode.chunks import plan_chunks
from vodflow.media.encode.segmented import (
    audio_cut_frames,
    audio_piece,
    cut_frames,
    first_seq,
    grid_frame,
    tee_audio_outputs,
    tee_safe,
)


@pytest.mark.parametrize("fps", ["30", "30000/1001", "25", "24000/1001", "60"])
def test_chunk_cuts_are_the_whole_videos_grid(fps):
    """Every chunk's cuts, placed at its first frame, are exactly the grid lines of an encode of the whole."""
    planned = plan_chunks(600.0, fps, 30)
    end = math.ceil(600 * Fraction(fps))
    whole = [grid_frame(k, fps, 6) for k in range(1, 100) if grid_frame(k, fps, 6) < end]
    found = []
    for chunk in planned:
        seq = first_seq(chunk.start, 6)
        assert grid_frame(seq, fps, 6) == chunk.first_frame  # a chunk starts on a grid line
        if chunk.index:
            found.append(chunk.first_frame)
        last = chunk.first_frame + chunk.frames if chunk.frames is not None else end
        found += [chunk.first_frame + c for c in cut_frames(chunk.first_frame, last, seq, fps, 6)]
    assert found == whole


def test_audio_cuts_count_the_priming_packet():
    # 46.875 AAC frames a second: the first at or after 6 s is frame 282 of the timeline, packet 283.
    assert audio_cut_frames(13.0, 6) == [283, 564]
    assert audio_cut_frames(12.0, 6) == [283]  # no empty segment at the very end


def test_audio_pieces_cover_the_track():
    durations = [audio_piece(seq, "x", 6, 25.0).duration for seq in range(5)]
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
