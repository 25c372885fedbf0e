"""The CMAF master, the per-codec masters and the MPD over several codecs (issue 24), from hand-made tracks (pure):
every variant's CODECS exact and VIDEO-RANGE present, H.264 first, one I-frame playlist per video track, the audio
groups shared; one AdaptationSet per codec, colour descriptors on HDR sets only; a track's range and colour survive
track.json; and an H.264-only tree renders byte for byte as it did before (golden files written by the code of
commit 0d66132)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import m3u8
import pytest

from vodflow.codec import decode, encode
from vodflow.errors import Permanent
from vodflow.media.measured import IFrame
from vodflow.media.package import cmaf_hls, dash
from vodflow.media.package.cmaf import CmafTrack, TimedSegment, codec_family

GOLDEN = Path(__file__).parent / "data" / "cmaf_h264_golden.json"
AV1, HEVC_HDR = "av01.0.05M.08", "hvc1.2.4.L123.B0"


def video(name: str, height: int, sizes: list[int], audio: str, codec: str = "avc1.64001f",
          video_range: str = "SDR", colour: tuple[int, ...] = ()) -> CmafTrack:
    ticks = [540_000] * (len(sizes) - 1) + [180_000]
    starts = [132_000 + sum(ticks[:i]) for i in range(len(ticks))]
    segments = [TimedSegment(f"seg_{i:05d}.m4s", t / 90_000, s, starts[i], t)
                for i, (t, s) in enumerate(zip(ticks, sizes, strict=True))]
    iframes = [IFrame(uri=s.uri, offset=600 + k, length=s.size // 9, duration=2.0)
               for s in segments for k in (0, s.size // 3)]
    return CmafTrack(name=name, kind="video", codec=codec, timescale=90_000, init_size=800, segments=segments,
                     iframes=iframes, width=height * 16 // 9, height=height, frame_rate="30000/1001", audio=audio,
                     video_range=video_range, colour=colour)


def audio(kbps: int) -> CmafTrack:
    ticks = [288_768, 287_744, 97_280]
    return CmafTrack(name=f"aac-{kbps}k", kind="audio", codec="mp4a.40.2", timescale=48_000, init_size=700,
                     segments=[TimedSegment(f"seg_{i:05d}.m4s", t / 48_000, kbps * 125 * t // 48_000,
                                            69_376 + sum(ticks[:i]), t) for i, t in enumerate(ticks)],
                     sample_rate=48_000, channels=2)


H264 = [video("1080p", 1080, [4_000_000, 4_300_000, 1_200_000], "aac-128k", "avc1.640028"),
        video("720p", 720, [2_000_000, 2_100_000, 600_000], "aac-128k"),
        video("360p", 360, [500_000, 520_000, 150_000], "aac-96k", "avc1.64001e"), audio(128), audio(96)]
AV1_LADDER = [video("av1-1080p", 1080, [2_000_000, 2_200_000, 600_000], "aac-128k", AV1),
              video("av1-360p", 360, [260_000, 250_000, 80_000], "aac-96k", "av01.0.01M.08")]
HEVC_LADDER = [video("hevc-720p", 720, [1_300_000, 1_350_000, 400_000], "aac-128k", HEVC_HDR, "PQ", (9, 16, 9))]
MIXED = [*H264, *AV1_LADDER, *HEVC_LADDER]


def test_an_h264_only_tree_renders_exactly_as_before():
    golden = json.loads(GOLDEN.read_text())
    _, files = cmaf_hls.render_playlists(H264)
    assert files == golden["hls"]
    assert list(files)[-1] == "master.m3u8" and cmaf_hls.codec_masters(H264) == {}
    assert dash.render_mpd(H264, 14.0) == golden["mpd"]


def test_the_combined_master_lists_every_codec_h264_first_with_exact_codecs_and_range():
    _, files = cmaf_hls.render_playlists(MIXED)
    master = m3u8.loads(files["master.m3u8"])
    variants = [p for p in master.playlists if p.stream_info.resolution]
    # H.264 first (start variant, then ascending), then HEVC, then AV1 ascending; audio-only last.
    assert [p.uri.split("/")[0] for p in master.playlists] == [
        "360p", "720p", "1080p", "hevc-720p", "av1-360p", "av1-1080p", "aac-96k"]
    by_name = {t.name: t for t in MIXED}
    for p in variants:
        track = by_name[p.uri.split("/")[0]]
        assert p.stream_info.codecs == f"{track.codec},mp4a.40.2"
        assert p.stream_info.video_range == track.video_range
        assert p.stream_info.audio == track.audio  # the audio groups are shared by every codec
        assert p.stream_info.frame_rate == 29.97 and p.stream_info.average_bandwidth
    assert {m.group_id for m in master.media} == {"aac-128k", "aac-96k"} and len(master.media) == 2
    assert "VIDEO-RANGE=PQ" in files["master.m3u8"] and "VIDEO-RANGE=SDR" in files["master.m3u8"]
    iframes = {i.uri.split("/")[0]: i.iframe_stream_info for i in master.iframe_playlists}
    assert set(iframes) == {t.name for t in MIXED if t.kind == "video"}
    assert iframes["hevc-720p"].codecs == HEVC_HDR and iframes["hevc-720p"].video_range == "PQ"
    assert iframes["av1-360p"].codecs == "av01.0.01M.08" and iframes["av1-360p"].video_range == "SDR"
    assert [i.uri.split("/")[0] for i in master.iframe_playlists][:3] == ["360p", "720p", "1080p"]


@pytest.mark.parametrize("family", ["h264", "av1", "hevc"])
def test_each_codec_has_its_own_master_with_only_its_variants(family):
    _, files = cmaf_hls.render_playlists(MIXED)
    assert cmaf_hls.codec_masters(MIXED) == {f: f"master-{f}.m3u8" for f in ("h264", "hevc", "av1")}
    assert list(files)[-1] == "master.m3u8"
    own = m3u8.loads(files[f"master-{family}.m3u8"])
    videos = [p for p in own.playlists if p.stream_info.resolution]
    expected = {t.name for t in MIXED if t.kind == "video" and t.family == family}
    assert {p.uri.split("/")[0] for p in videos} == expected
    assert {codec_family(p.stream_info.codecs.split(",")[0]) for p in videos} == {family}
    assert all(p.stream_info.video_range for p in videos)
    assert {i.uri.split("/")[0] for i in own.iframe_playlists} == expected
    assert own.playlists[-1].stream_info.codecs == "mp4a.40.2"  # the sound on a bad link, in every master
    assert {m.group_id for m in own.media} == {t.audio for t in MIXED if t.name in expected}


def test_the_mpd_has_one_adaptation_set_per_codec_and_colour_only_on_hdr():
    mpd = dash.parse_mpd(dash.render_mpd(MIXED, 14.0))
    sets = mpd.periods[0].adaptation_sets
    assert [(s.id, s.content_type) for s in sets] == [(0, "video"), (1, "audio"), (2, "video"), (3, "video")]
    h264, sound, hevc, av1 = sets
    assert [r.codecs for r in h264.representations] == ["avc1.64001e", "avc1.64001f", "avc1.640028"]
    assert [r.codecs for r in av1.representations] == ["av01.0.01M.08", AV1]
    assert [r.codecs for r in hevc.representations] == [HEVC_HDR]
    assert all(s.mime_type == "video/mp4" for s in (h264, hevc, av1))
    assert [(s.max_width, s.max_height) for s in (h264, hevc, av1)] == [(1920, 1080), (1280, 720), (1920, 1080)]
    assert [s.selection_priority for s in (h264, hevc, av1)] == [1, 2, 3]
    assert h264.essential_properties is None and av1.essential_properties is None
    assert h264.supplemental_properties is None and av1.supplemental_properties is None
    assert [(d.scheme_id_uri.rsplit(":", 1)[1], d.value) for d in hevc.essential_properties] == [
        ("ColourPrimaries", "9"), ("TransferCharacteristics", "16"), ("MatrixCoefficients", "9")]
    assert [r.id for r in sound.representations] == ["aac-96k", "aac-128k"]  # one audio set for every codec
    offsets = {r.segment_templates[0].presentation_time_offset for s in (h264, hevc, av1) for r in s.representations}
    assert offsets == {132_000}


def test_an_hlg_track_without_its_own_colour_gets_bt2020_hlg():
    hlg = video("av1-720p", 720, [900_000, 950_000, 300_000], "aac-128k", "av01.0.08M.10", "HLG")
    sets = dash.parse_mpd(dash.render_mpd([*H264, hlg], 14.0)).periods[0].adaptation_sets
    assert [d.value for d in sets[2].essential_properties] == ["9", "18", "9"]


def test_range_and_colour_go_through_track_json():
    track = HEVC_LADDER[0]
    again = decode(CmafTrack, json.loads(json.dumps(encode(track))))
    assert (again.video_range, again.colour, again.family) == ("PQ", (9, 16, 9), "hevc")
    old = {k: v for k, v in encode(H264[0]).items() if k not in ("video_range", "colour")}  # before issue 24
    assert (decode(CmafTrack, old).video_range, decode(CmafTrack, old).colour) == ("SDR", ())


def test_codec_families():
    assert [codec_family(c) for c in ("avc1.64001f", "avc3.640028", AV1, HEVC_HDR, "hev1.1.6.L93.B0",
                                      "mp4a.40.2", "vp09.00.10.08")] == [
        "h264", "h264", "av1", "hevc", "hevc", "aac", "vp09"]


def test_a_codec_off_the_h264_grid_is_refused_rather_than_published():
    shifted = dataclasses.replace(AV1_LADDER[0], segments=[dataclasses.replace(s, start=s.start - 45_000)
                                                           for s in AV1_LADDER[0].segments])  # half a second early
    for render in (lambda t: cmaf_hls.render_playlists(t), lambda t: dash.render_mpd(t, 14.0)):
        with pytest.raises(Permanent, match="av1-1080p is not on the 1080p segment grid"):
            render([*H264, shifted])
    other_timescale = dataclasses.replace(AV1_LADDER[0], timescale=15_360, segments=[
        dataclasses.replace(s, start=s.start * 15_360 // 90_000, ticks=s.ticks * 15_360 // 90_000)
        for s in AV1_LADDER[0].segments])
    cmaf_hls.render_playlists([*H264, other_timescale])  # the same times in another timescale: fine
