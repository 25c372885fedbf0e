"""CMAF on real encodes: the TS ladder remuxed to fMP4 (init + segments per track), the fMP4 HLS tree and the DASH
MPD over the same files, checked with ffprobe on init+segment, the parsed MPD (mpegdash) and parsed playlists."""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import m3u8
import pytest

from tests.integration.media.cmaftree import cmaf_tree
from vodflow.media.package import dash, hls

pytestmark = pytest.mark.integration


def ffprobe(path: Path, *args: str) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", *args, "-of", "json", str(path)],  # noqa: S603
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def joined(tmp: Path, init: Path, data: bytes) -> Path:
    path = tmp / f"probe-{init.parent.name}.mp4"
    path.write_bytes(init.read_bytes() + data)
    return path


def expand(timeline) -> list[tuple[int, int]]:
    """(t, d) of every segment of an MPD SegmentTimeline."""
    out, t = [], None
    for s in timeline.Ss:
        t = s.t if s.t is not None else t
        for _ in range((s.r or 0) + 1):
            out.append((t, s.d))
            t += s.d
    return out


@pytest.fixture(scope="module")
def landscape_tree(media, tmp_path_factory):
    return cmaf_tree(media["landscape"], tmp_path_factory.mktemp("cmaf-landscape"))


def test_every_segment_of_every_rendition_starts_with_a_keyframe(landscape_tree, tmp_path):
    _, measured, tracks, root = landscape_tree
    videos = [t for t in tracks if t.kind == "video"]
    assert [t.name for t in videos] == [m.name for m in measured]  # 1080p 720p 480p 360p
    for track in videos:
        init = root / track.name / "init.mp4"
        files = sorted((root / track.name).glob("seg_*.m4s"))
        assert [f.name for f in files] == [s.uri for s in track.segments]
        for segment, path in zip(track.segments, files, strict=True):
            probe_path = joined(tmp_path, init, path.read_bytes())
            packets = ffprobe(probe_path, "-select_streams", "v", "-show_entries", "packet=flags,duration")["packets"]
            assert packets[0]["flags"].startswith("K"), f"{track.name}/{path.name}"
            frames = len(packets)
            assert frames == round(segment.duration * float(Fraction(track.frame_rate)))
            stream = ffprobe(probe_path, "-show_streams")["streams"][0]
            assert (stream["width"], stream["height"]) == (track.width, track.height)
            assert Fraction(stream["avg_frame_rate"]) == Fraction(track.frame_rate)


def test_cmaf_segments_are_the_ts_grid(landscape_tree):
    """Same boundaries as the TS segments (the same 6 s grid, keyframes every 2 s: three I-frames a segment)."""
    _, measured, tracks, _ = landscape_tree
    by_name = {t.name: t for t in tracks}
    for m in measured:
        track = by_name[m.name]
        assert [s.duration for s in track.segments] == pytest.approx([s.duration for s in m.segments], abs=1e-6)
        assert track.first_time == m.first_pts  # 90 kHz, the TS timeline kept
        assert len(track.iframes) == len(m.iframes)


def test_mpd_parses_and_its_numbers_match_the_files(landscape_tree, tmp_path):
    source, measured, _, root = landscape_tree
    mpd = dash.parse_mpd((root / dash.MPD).read_text())
    assert mpd.type == "static"
    period = mpd.periods[0]
    kinds = [a.content_type for a in period.adaptation_sets]
    assert kinds == ["video", "audio"]  # audio in its own adaptation set
    video_set, audio_set = period.adaptation_sets
    assert {r.id for r in video_set.representations} == {m.name for m in measured}
    first_picture = Fraction(measured[0].first_pts, 90_000)
    for rep in [*video_set.representations, *audio_set.representations]:
        template = rep.segment_templates[0]
        folder = root / rep.id
        init = folder / template.initialization.replace("$RepresentationID$/", "")
        segments = expand(template.segment_timelines[0])
        pattern = template.media.replace("$RepresentationID$/", "")
        names = [pattern.replace("$Number%05d$", f"{template.start_number + i:05d}") for i in range(len(segments))]
        assert names == sorted(p.name for p in folder.glob("seg_*.m4s"))  # every file, nothing more
        assert template.presentation_time_offset == int(first_picture * template.timescale)
        for (_, d), name in zip(segments, names, strict=True):
            packets = ffprobe(joined(tmp_path, init, (folder / name).read_bytes()), "-show_entries",
                              "packet=dts,duration:stream=time_base")
            first, last = packets["packets"][0], packets["packets"][-1]
            assert int(last["dts"]) + int(last["duration"]) - int(first["dts"]) == d, f"{rep.id}/{name}"
            assert Fraction(packets["streams"][0]["time_base"]) == Fraction(1, template.timescale)
        assert expand(template.segment_timelines[0])[0][0] + sum(d for _, d in segments) == \
            segments[-1][0] + segments[-1][1]
        stream = ffprobe(joined(tmp_path, init, (folder / names[0]).read_bytes()), "-show_streams")["streams"][0]
        if rep in video_set.representations:
            assert (rep.width, rep.height) == (stream["width"], stream["height"])
            assert Fraction(rep.frame_rate) == Fraction(stream["avg_frame_rate"])
            assert rep.codecs == f"avc1.64{0:02x}{stream['level']:02x}"
        else:
            assert rep.codecs == "mp4a.40.2" and int(rep.audio_sampling_rate) == int(stream["sample_rate"])
        sizes = [(folder / n).stat().st_size for n in names]
        seconds = [d / template.timescale for _, d in segments]
        assert rep.bandwidth == hls.peak_bitrate([hls.Segment(n, s, z) for n, s, z in zip(names, seconds, sizes,
                                                                                          strict=True)], 6)
    assert sum(d for _, d in expand(video_set.representations[0].segment_templates[0].segment_timelines[0])) \
        / 90_000 == pytest.approx(source.duration, abs=1 / 30)


def test_fmp4_hls_uses_the_same_files_with_ext_x_map(landscape_tree):
    _, measured, tracks, root = landscape_tree
    master = m3u8.load(str(root / "master.m3u8"))
    mpd = dash.parse_mpd((root / dash.MPD).read_text())
    timelines = {r.id: (r.segment_templates[0].timescale, expand(r.segment_templates[0].segment_timelines[0]))
                 for a in mpd.periods[0].adaptation_sets for r in a.representations}
    assert master.is_independent_segments
    video_variants = [p for p in master.playlists if p.stream_info.resolution]
    assert len(video_variants) == len(measured)
    audio_only = [p for p in master.playlists if not p.stream_info.resolution]
    assert len(audio_only) == 1 and audio_only[0].stream_info.codecs == "mp4a.40.2"  # the audio-only variant
    assert audio_only[0].stream_info.bandwidth == min(p.stream_info.bandwidth for p in master.playlists)
    for variant in video_variants:
        assert variant.stream_info.codecs.endswith(",mp4a.40.2") and variant.stream_info.codecs.startswith("avc1.64")
        assert variant.stream_info.average_bandwidth and variant.stream_info.frame_rate == 30
        assert variant.stream_info.audio and any(m.group_id == variant.stream_info.audio and m.uri
                                                 for m in master.media)
    for track in tracks:
        playlist = m3u8.load(str(root / track.name / "index.m3u8"))
        assert playlist.segments[0].init_section.uri == "init.mp4" and playlist.version >= 6
        assert playlist.target_duration == 6 and playlist.is_endlist and playlist.playlist_type == "vod"
        timescale, timeline = timelines[track.name]
        assert [s.uri for s in playlist.segments] == [f"seg_{i:05d}.m4s" for i in range(len(timeline))]
        assert [s.duration for s in playlist.segments] == pytest.approx([d / timescale for _, d in timeline], abs=1e-6)
        # Measured like the TS tree: BANDWIDTH is the peak over the segments (video plus its audio)
    assert len(master.iframe_playlists) == len(measured)


def test_iframe_byte_ranges_decode_to_one_keyframe(landscape_tree, tmp_path):
    """Each I-frame entry (a fragment's moof and its first sample) decodes on its own after the init segment."""
    _, _, tracks, root = landscape_tree
    track = next(t for t in tracks if t.name == "360p")
    playlist = m3u8.load(str(root / "360p" / "iframes.m3u8"))
    assert playlist.is_i_frames_only and playlist.segments[0].init_section.uri == "init.mp4"
    assert len(playlist.segments) == len(track.iframes) >= 3
    for entry in playlist.segments:
        length, offset = (int(x) for x in entry.byterange.split("@"))
        data = (root / "360p" / entry.uri).read_bytes()[offset:offset + length]
        assert data[4:8] == b"moof"
        frames = ffprobe(joined(tmp_path, root / "360p" / "init.mp4", data), "-select_streams", "v",
                         "-show_entries", "frame=key_frame,pict_type", "-show_frames")["frames"]
        assert frames and frames[0]["key_frame"] == 1 and frames[0]["pict_type"] == "I"


def test_audio_keeps_its_place_next_to_the_video(landscape_tree):
    """Each audio track starts where the TS's audio does, on the same timeline as the first picture."""
    _, measured, tracks, root = landscape_tree
    video = next(t for t in tracks if t.kind == "video")
    for audio in (t for t in tracks if t.kind == "audio"):
        source = next(m for m in measured if m.name == {"aac-128k": "1080p", "aac-96k": "360p"}[audio.name])
        ts_audio = ffprobe(root.parent / "hls" / source.name / "seg_00000.ts", "-select_streams", "a",
                           "-show_entries", "packet=pts", "-read_intervals", "%+#1")["packets"][0]["pts"]
        assert audio.first_time * 90_000 == int(ts_audio) * audio.timescale
        lead = audio.first_time / audio.timescale - video.first_time / video.timescale
        assert lead == pytest.approx((int(ts_audio) - source.first_pts) / 90_000, abs=1e-6)
    assert {t.name for t in tracks if t.kind == "audio"} == {"aac-128k", "aac-96k"}


def test_a_silent_source_has_no_audio_set_and_no_audio_only_variant(media, tmp_path):
    _, measured, tracks, root = cmaf_tree(media["no_audio"], tmp_path)
    assert all(t.kind == "video" for t in tracks)
    mpd = dash.parse_mpd((root / dash.MPD).read_text())
    assert [a.content_type for a in mpd.periods[0].adaptation_sets] == ["video"]
    master = m3u8.load(str(root / "master.m3u8"))
    assert all(p.stream_info.resolution for p in master.playlists) and not master.media
    assert [p.stream_info.frame_rate for p in master.playlists] == [25] * len(measured)
