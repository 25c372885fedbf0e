"""The CMAF manifests from measured tracks (pure): the MPD's SegmentTimeline is exact and folds repeats, audio has
its own adaptation set, and the fMP4 master pairs each video with its audio group and ends with the audio-only
variant."""

from __future__ import annotations

import m3u8

from vodflow.media.encode.ladder import plan_ladder
from vodflow.media.package import cmaf_hls, dash
from vodflow.media.package.cmaf import CmafTrack, TimedSegment, audio_from


def video(name: str, height: int, sizes: list[int], audio: str) -> CmafTrack:
    ticks = [540_000] * (len(sizes) - 1) + [180_000]
    starts = [132_000 + sum(ticks[:i]) for i in range(len(ticks))]
    return CmafTrack(name=name, kind="video", codec="avc1.64001f", timescale=90_000, init_size=800,
                     segments=[TimedSegment(f"seg_{i:05d}.m4s", t / 90_000, s, starts[i], t)
                               for i, (t, s) in enumerate(zip(ticks, sizes, strict=True))],
                     width=height * 16 // 9, height=height, frame_rate="30", audio=audio)


def audio(kbps: int) -> CmafTrack:
    ticks = [288_768, 287_744, 97_280]
    return CmafTrack(name=f"aac-{kbps}k", kind="audio", codec="mp4a.40.2", timescale=48_000, init_size=700,
                     segments=[TimedSegment(f"seg_{i:05d}.m4s", t / 48_000, kbps * 125 * t // 48_000,
                                            69_376 + sum(ticks[:i]), t) for i, t in enumerate(ticks)],
                     sample_rate=48_000, channels=2)


TRACKS = [video("720p", 720, [2_000_000, 2_100_000, 600_000], "aac-128k"),
          video("360p", 360, [500_000, 520_000, 150_000], "aac-96k"), audio(128), audio(96)]


def test_the_mpd_has_an_exact_timeline_and_audio_on_its_own():
    mpd = dash.parse_mpd(dash.render_mpd(TRACKS, 14.0))
    assert mpd.type == "static" and mpd.media_presentation_duration == "PT14.000S"
    video_set, audio_set = mpd.periods[0].adaptation_sets
    assert (video_set.content_type, audio_set.content_type) == ("video", "audio")
    assert [r.id for r in video_set.representations] == ["360p", "720p"]  # by bandwidth
    template = video_set.representations[1].segment_templates[0]
    assert [(s.t, s.d, s.r) for s in template.segment_timelines[0].Ss] == [(132_000, 540_000, 1), (None, 180_000,
                                                                                                   None)]
    assert template.presentation_time_offset == 132_000 and template.timescale == 90_000
    assert audio_set.representations[0].segment_templates[0].presentation_time_offset == 70_400  # 132000 @ 48 kHz
    assert video_set.representations[1].bandwidth == 2_100_000 * 8 // 6
    assert (video_set.representations[1].width, video_set.representations[1].frame_rate) == (1280, "30")


def test_the_fmp4_master_pairs_video_with_its_audio_and_ends_with_audio_only():
    _, files = cmaf_hls.render_playlists(TRACKS)
    master = m3u8.loads(files["master.m3u8"])
    # The start variant first (720p peaks above 2.5 Mb/s, so 360p), then by bandwidth, audio-only last.
    assert [p.uri for p in master.playlists] == ["360p/index.m3u8", "720p/index.m3u8", "aac-96k/index.m3u8"]
    low, top, sound = master.playlists
    assert top.stream_info.audio == "aac-128k" and low.stream_info.audio == "aac-96k"
    assert top.stream_info.codecs == "avc1.64001f,mp4a.40.2" and sound.stream_info.codecs == "mp4a.40.2"
    assert sound.stream_info.resolution is None
    assert sound.stream_info.bandwidth < low.stream_info.bandwidth
    assert {m.group_id for m in master.media} == {"aac-128k", "aac-96k"}
    assert all(m3u8.loads(files[f"{t.name}/index.m3u8"]).target_duration == 6 for t in TRACKS)


def test_each_audio_bitrate_is_made_by_its_first_rendition():
    renditions = list(plan_ladder(1920, 1080, "30", True).renditions)
    assert [audio_from(renditions, r) for r in renditions] == [128, 0, 0, 96]
    silent = list(plan_ladder(1920, 1080, "30", False).renditions)
    assert [audio_from(silent, r) for r in silent] == [0, 0, 0, 0]
