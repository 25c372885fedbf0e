"""Playlist assembly: measured bandwidths, RFC 8216 rounding, Apple's required attributes."""

from __future__ import annotations

import m3u8
import pytest

from vodflow.media.measured import IFrame, MeasuredRendition, Segment
from vodflow.media.package.hls import (
    average_bitrate,
    iframe_playlist,
    master_playlist,
    media_playlist,
    order_variants,
    peak_bitrate,
    render_playlists,
    target_duration,
    variant_stats,
)


def rendition(name, width, height, sizes, durations=None, fps="30000/1001", audio=True):
    durations = durations or [6.006] * len(sizes)
    segments = [Segment(f"seg_{i:05d}.ts", d, s) for i, (d, s) in enumerate(zip(durations, sizes, strict=True))]
    iframes = [IFrame(seg.uri, 376, 40_000, 2.002) for seg in segments]
    video = "avc1.64001f"
    return MeasuredRendition(name, width, height, fps, f"{video},mp4a.40.2" if audio else video, video,
                             segments, iframes)


def test_target_duration_rounds_half_up():
    assert target_duration([6.006, 6.006, 2.0]) == 6
    assert target_duration([6.5]) == 7  # ffmpeg's lrint gives 6 here: RFC 8216 4.3.3.1 says 7
    assert target_duration([5.49]) == 5
    assert target_duration([0.2]) == 1


def test_average_is_bits_over_seconds():
    assert average_bitrate([Segment("a", 6.0, 750_000), Segment("b", 2.0, 250_000)]) == 1_000_000


def test_peak_uses_windows_of_half_to_one_and_a_half_targets():
    segments = [Segment("a", 2.0, 250_000), Segment("b", 2.0, 750_000), Segment("c", 2.0, 250_000)]
    # target 6: windows must last 3..9 s, so the 4 s runs a+b and b+c count, single 2 s segments do not.
    assert peak_bitrate(segments, 6) == 2_000_000
    # target 2: windows of 1..3 s are single segments.
    assert peak_bitrate(segments, 2) == 3_000_000


def test_peak_of_something_shorter_than_half_a_target_is_its_average():
    assert peak_bitrate([Segment("a", 1.0, 125_000)], 6) == 1_000_000


def test_media_playlist_is_vod_with_endlist():
    text = media_playlist([Segment("seg_00000.ts", 6.006, 1), Segment("seg_00001.ts", 1.5, 1)], 6)
    parsed = m3u8.loads(text)
    assert parsed.playlist_type == "vod" and parsed.is_endlist and parsed.target_duration == 6
    assert [s.duration for s in parsed.segments] == [6.006, 1.5]
    assert "#EXT-X-INDEPENDENT-SEGMENTS" in text and text.endswith("#EXT-X-ENDLIST\n")


def test_iframe_playlist_has_byteranges():
    text = iframe_playlist([IFrame("seg_00000.ts", 564, 40_000, 2.0), IFrame("seg_00000.ts", 80_000, 30_000, 2.0)], 6)
    parsed = m3u8.loads(text)
    assert parsed.is_i_frames_only
    assert [s.byterange for s in parsed.segments] == ["40000@564", "30000@80000"]
    assert "#EXT-X-VERSION:4" in text


def test_master_playlist_has_every_required_attribute():
    # 1080p: segments of 2.0, 6.0, 2.5 and 1.4 s (1.5 MB, 1.5 MB, 1 MB, 750 kB). Target 6: windows of 3-9 s.
    #   a alone (2 s), c alone (2.5 s), d alone (1.4 s): too short; a+b+c (10.5 s), b+c+d (9.9 s): too long
    #   a+b  (8.0 s): 3_000_000 B * 8 / 8.0 = 3_000_000 bps
    #   b    (6.0 s): 1_500_000 B * 8 / 6.0 = 2_000_000 bps
    #   b+c  (8.5 s): 2_500_000 B * 8 / 8.5 = 2_352_941.2 bps
    #   c+d  (3.9 s): 1_750_000 B * 8 / 3.9 = 3_589_743.6 bps  <- the peak, rounded up: 3_589_744
    #   (the short a alone would be 6 Mbps, d alone 4.29 Mbps; all four together 3_193_277 bps, the average)
    # 360p: three 6.006 s segments of 700 kB, each a window alone: 5_600_000 / 6.006 = 932_400.9 bps
    renditions = [rendition("1080p", 1920, 1080, [1_500_000, 1_500_000, 1_000_000, 750_000], [2.0, 6.0, 2.5, 1.4]),
                  rendition("360p", 640, 360, [700_000] * 3)]
    text = master_playlist(renditions, 6)
    parsed = m3u8.loads(text)
    assert "#EXT-X-INDEPENDENT-SEGMENTS" in text
    for variant in parsed.playlists:
        info = variant.stream_info
        assert info.bandwidth and info.average_bandwidth and info.codecs and info.resolution
        assert info.frame_rate == pytest.approx(29.97)
    top = next(p for p in parsed.playlists if p.uri == "1080p/index.m3u8")
    assert top.stream_info.resolution == (1920, 1080)
    assert top.stream_info.codecs == "avc1.64001f,mp4a.40.2"
    assert (top.stream_info.bandwidth, top.stream_info.average_bandwidth) == (3_589_744, 3_193_277)
    low = next(p for p in parsed.playlists if p.uri == "360p/index.m3u8")
    assert (low.stream_info.bandwidth, low.stream_info.average_bandwidth) == (932_401, 932_401)
    assert [p.uri for p in parsed.iframe_playlists] == ["360p/iframes.m3u8", "1080p/iframes.m3u8"]
    assert all(p.iframe_stream_info.codecs == "avc1.64001f" for p in parsed.iframe_playlists)


def test_start_variant_is_the_best_under_the_start_budget_then_ascending():
    stats = [variant_stats(rendition(n, 2, 2, [s] * 3), 6) for n, s in
             [("1080p", 4_800_000), ("720p", 2_400_000), ("480p", 1_300_000), ("360p", 700_000)]]
    assert order_variants(stats) == ["480p", "360p", "720p", "1080p"]


def test_render_playlists_writes_one_target_everywhere_and_master_last():
    a = rendition("720p", 1280, 720, [1, 1, 1], durations=[6.006, 6.5, 1.0])
    b = rendition("360p", 640, 360, [1, 1, 1], durations=[6.006, 6.006, 1.5])
    target, files = render_playlists([a, b])
    assert target == 7
    assert list(files)[-1] == "master.m3u8"
    assert {m3u8.loads(t).target_duration for p, t in files.items() if p.endswith("index.m3u8")} == {7}


def test_measured_rendition_round_trips_through_xcom_dicts():
    original = rendition("720p", 1280, 720, [1, 2])
    assert MeasuredRendition.from_dict(original.to_dict()) == original
