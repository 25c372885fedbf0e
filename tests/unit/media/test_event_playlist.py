"""The early tree's playlists: every rewrite only appends, only the contiguous prefix is listed, ENDLIST once."""

from __future__ import annotations

import random

import m3u8
import pytest

from vodflow.media.package.event_playlist import (
    EventEntry,
    EventVariant,
    contiguous,
    event_master,
    event_playlist,
    event_target_duration,
    tree_uri,
)


def entry(seq: int, duration: float = 6.0) -> EventEntry:
    return EventEntry(seq, f"../../hls/720p/seg_{seq:05d}.ts", duration)


def test_only_the_contiguous_prefix_from_zero_is_listed() -> None:
    assert contiguous([entry(1), entry(2)]) == []
    assert [e.seq for e in contiguous([entry(2), entry(0), entry(1), entry(4)])] == [0, 1, 2]
    text, listed, ended = event_playlist([entry(0), entry(2)], 7)
    assert (listed, ended) == (1, False)
    assert "seg_00002" not in text and "#EXT-X-ENDLIST" not in text


def test_segments_arriving_in_any_order_only_ever_append() -> None:
    """Whatever order the segments come up in, each rendering is the previous text plus lines; ENDLIST comes
    last, once, when everything up to the last seq is listed."""
    rng = random.Random(25)
    for _ in range(50):
        count = rng.randint(1, 12)
        order = list(range(count))
        rng.shuffle(order)
        seen: list[EventEntry] = []
        previous = ""
        for i, seq in enumerate(order):
            seen.append(entry(seq, 6.0 if seq < count - 1 else 2.5))
            last = count - 1 if i >= len(order) - 2 else None  # the end may be known before the last one is up
            text, listed, ended = event_playlist(seen, 7, last)
            assert previous == "" or text.startswith(previous)
            assert ended == (last is not None and listed == count)
            previous = text
        assert previous.endswith("#EXT-X-ENDLIST\n") and previous.count("#EXT-X-ENDLIST") == 1
        parsed = m3u8.loads(previous)
        assert [s.uri for s in parsed.segments] == [entry(s).uri for s in range(count)]
        assert parsed.playlist_type == "event" and parsed.is_endlist and parsed.media_sequence == 0


def test_header_target_duration_and_durations() -> None:
    text, _, _ = event_playlist([entry(0, 6.006), entry(1, 5.9)], event_target_duration(6), last_seq=1)
    assert text.splitlines()[:6] == ["#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-TARGETDURATION:7",
                                     "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:EVENT",
                                     "#EXT-X-INDEPENDENT-SEGMENTS"]
    parsed = m3u8.loads(text)
    assert parsed.target_duration == 7
    assert [s.duration for s in parsed.segments] == [6.006, 5.9]
    assert all(round(s.duration) <= parsed.target_duration for s in parsed.segments)


def test_master_lists_every_variant_in_order_with_nominal_bandwidths() -> None:
    variants = [EventVariant("1080p", 1920, 1080, 6000, 128, "30"),
                EventVariant("360p", 640, 360, 800, 96, "30000/1001")]
    parsed = m3u8.loads(event_master(variants))
    assert [p.uri for p in parsed.playlists] == ["1080p/index.m3u8", "360p/index.m3u8"]
    top = parsed.playlists[0].stream_info
    assert (top.bandwidth, top.average_bandwidth, top.resolution, top.frame_rate) == (
        7353600, 6128000, (1920, 1080), 30.0)
    assert parsed.playlists[1].stream_info.frame_rate == 29.97
    assert parsed.media == [] and "AUDIO=" not in event_master(variants)


def test_master_with_demuxed_audio() -> None:
    text = event_master([EventVariant("720p", 1280, 720, 3000, 128, "25")], audio_uri="audio/index.m3u8")
    parsed = m3u8.loads(text)
    assert [(m.type, m.group_id, m.uri, m.default) for m in parsed.media] == [("AUDIO", "aud", "audio/index.m3u8",
                                                                               "YES")]
    assert parsed.playlists[0].stream_info.audio == "aud"


@pytest.mark.parametrize("uri", ["../../../v2/hls/x.ts", "/etc/passwd", "https://evil/x.ts", 'a".ts', "a\nb.ts", ""])
def test_a_uri_outside_the_version_is_never_written(uri: str) -> None:
    with pytest.raises(ValueError):
        tree_uri(uri)
    assert tree_uri("../../hls/720p/seg_00001.ts") == "../../hls/720p/seg_00001.ts"
    assert tree_uri("seg_00001.ts") == "seg_00001.ts"
