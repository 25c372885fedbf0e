"""What a chunk's segment folder says is finished: the segment muxer's list, whole lines only."""

from __future__ import annotations

from types import SimpleNamespace

from vodflow.media.encode.segmented import EarlyGrid, audio_cut_frames
from vodflow.pipeline.early_chunks import audio_last_seq, early_audio_kbps, listed


def test_only_whole_lines_of_the_list_count(tmp_path):
    (tmp_path / "index.m3u8").write_text("#EXTM3U\n#EXTINF:6.0,\nseg_00004.ts\n#EXTINF:6.0,\nseg_00005.ts\n#EXTINF:6.0,"
                                         "\nseg_0000")
    assert listed(str(tmp_path)) == [4, 5]
    (tmp_path / "index.m3u8").write_text("#EXTM3U\nseg_00004.ts\nseg_00005.ts\n#EXT-X-ENDLIST\n")
    assert listed(str(tmp_path)) == [4, 5]


def test_no_list_yet_is_nothing_finished(tmp_path):
    assert listed(str(tmp_path)) == []
    assert listed(str(tmp_path / "missing")) == []


def test_the_audio_tracks_last_segment_follows_the_cuts():
    plain, lead_in = EarlyGrid(6, 6), EarlyGrid(6, 2)
    # 30-31 s is the last
    assert audio_last_seq(SimpleNamespace(picture_end=31.0), plain) == len(audio_cut_frames(31.0, plain)) == 5
    assert audio_last_seq(SimpleNamespace(picture_end=30.0), plain) == 4
    assert audio_last_seq(SimpleNamespace(picture_end=30.0), lead_in) == 6


def test_the_early_audio_is_the_top_renditions():
    ladder = (SimpleNamespace(audio_kbps=128), SimpleNamespace(audio_kbps=96))
    assert early_audio_kbps(SimpleNamespace(renditions=ladder, audio_bitrates=[96, 128])) == 128
    assert early_audio_kbps(SimpleNamespace(renditions=(), audio_bitrates=[])) == 0
