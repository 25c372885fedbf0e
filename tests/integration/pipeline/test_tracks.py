"""Real-world inputs through every step (S3 over HTTP, the Postgres catalog): lip sync across chunk seams,
timestamps that restart, audio shorter or longer than the picture, every audio track, subtitles and captions."""

from __future__ import annotations

import itertools
import json
import subprocess
import uuid
from pathlib import Path

import pytest

from vodflow import layout
from vodflow.devtools.conformance import check_tree

from .helpers import packets as _packets
from .helpers import run_all, upload

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("chunk_seconds", [30, 0])
def test_a_published_rendition_keeps_lip_sync_chunked_or_not(services, tmp_path, chunk_seconds):
    """Issue 13's source: audio 0.3 s ahead of the video, 29.97 fps, chunks of 30 s. In the published tree the
    picture is within one frame of the sound at every second, through the first chunk and the seam, and the
    chunked rendition has every frame of the unchunked one."""
    from tests.avsync import measure_sync
    from vodflow.devtools.samples import make_sync_sample

    path = Path(make_sync_sample(str(tmp_path / "sync.mp4"), 65.0, "30000/1001", audio_lead=0.3))
    source = upload(services, path, f"uploads/{uuid.uuid4().hex[:6]}/sync.mp4")
    run = run_all(services, {"source": source, "chunk_seconds": chunk_seconds}, f"run-sync-{chunk_seconds}")
    assert len(run["items"]) == (3 if chunk_seconds else 1)  # audio + chunks [0, 30) and [30, 65)
    video_id = run["job"].video_id
    assert services.catalog.get_video(video_id)["status"] == "ready"
    services.storage.download_tree(layout.version_prefix(video_id, 1), str(tmp_path / "out"))
    report = check_tree(tmp_path / "out" / "hls", expected_duration=65.0, expect_audio=True)
    assert report.ok, report.summary()
    [rendition] = [p.parent for p in (tmp_path / "out" / "hls").glob("*/index.m3u8")]
    sync = measure_sync(rendition / "index.m3u8")
    assert len(sync.flashes) == len(sync.beeps) == 64
    assert sync.worst_ms <= 45.0 and max(sync.offsets_ms) - min(sync.offsets_ms) <= 10.0, sync.offsets_ms
    assert sync.frames == 1948  # 65 s at 29.97 fps, chunked or not (the video held from 0 to where it starts)


@pytest.mark.parametrize("chunk_seconds", [0, 6])
def test_two_captures_in_one_ts_with_restarting_timestamps_are_published_continuous(services, tmp_path,
                                                                                   chunk_seconds):
    """Two 5 s captures concatenated into one MPEG-TS: the second restarts its timestamps (ffprobe says the file
    lasts 5 s). The video becomes `ready` with all 10 s, its timestamps continuous, and a poster (or a warning
    event saying why not)."""
    from vodflow.devtools.samples import make_restarting_ts

    path = Path(make_restarting_ts(str(tmp_path / "two-captures.ts"), 5.0))
    source = upload(services, path, f"uploads/{uuid.uuid4().hex[:6]}/two-captures.ts")
    run = run_all(services, {"source": source, "chunk_seconds": chunk_seconds, "ladder": ["240p"]},
                  f"run-restart-{chunk_seconds}")
    video_id = run["job"].video_id
    video = services.catalog.get_video(video_id)
    assert (video["status"], video["error_code"]) == ("ready", None)
    assert video["duration"] == pytest.approx(10.0, abs=0.1)
    services.storage.download_tree(layout.version_prefix(video_id, 1), str(tmp_path / "out"))
    report = check_tree(tmp_path / "out" / "hls", expected_duration=10.0, expect_audio=True)
    assert report.ok, report.summary()
    playlist = tmp_path / "out" / "hls" / "240p" / "index.m3u8"
    for kind, step in (("v", 1 / 30), ("a", 1024 / 48000)):
        pts = sorted(float(p["pts_time"]) for p in _packets(playlist, kind))
        steps = [b - a for a, b in itertools.pairwise(pts)]
        assert max(steps) < 1.5 * step and min(steps) > 0.5 * step, kind  # no jump back, no gap
        assert pts[-1] - pts[0] == pytest.approx(10.0, abs=0.1)
    events = [e["kind"] for e in services.catalog.get_events(video_id)]
    assert video["poster_uri"] or "warning" in events


@pytest.mark.parametrize(("audio_seconds", "chunk_seconds"), [(3.0, 0), (3.0, 6), (20.0, 0), (20.0, 6)])
def test_audio_is_padded_or_cut_to_the_picture_in_every_segment(services, tmp_path, audio_seconds, chunk_seconds):
    """14 s of picture with 3 s of sound (padded with silence) or 20 s (cut): every segment of every rendition
    carries audio packets for its whole length, and the audio ends with the picture."""
    from vodflow.devtools.samples import SampleSpec, make_sample

    path = Path(make_sample(str(tmp_path / "src.mp4"), SampleSpec(640, 360, 14.0, "30", audio_seconds=audio_seconds)))
    source = upload(services, path, f"uploads/{uuid.uuid4().hex[:6]}/audio.mp4")
    run = run_all(services, {"source": source, "chunk_seconds": chunk_seconds, "ladder": ["360p", "240p"]},
                  f"run-pad-{audio_seconds}-{chunk_seconds}")
    assert len(run["items"]) == (3 if chunk_seconds else 1)
    video_id = run["job"].video_id
    assert services.catalog.get_video(video_id)["status"] == "ready"
    services.storage.download_tree(layout.version_prefix(video_id, 1), str(tmp_path / "out"))
    aac = 1024 / 48000
    for name in ("360p", "240p"):
        folder = tmp_path / "out" / "hls" / name
        segments = sorted(folder.glob("seg_*.ts"))
        assert len(segments) == 3
        for segment in segments:
            video = sorted(float(p["pts_time"]) for p in _packets(segment, "v"))
            audio = sorted(float(p["pts_time"]) for p in _packets(segment, "a"))
            assert audio, f"{name}/{segment.name} has no audio packets"
            # Within 0.1 s at each end: the muxer interleaves, so a packet or two may sit in the next segment.
            assert audio[0] <= video[0] + 0.1 and audio[-1] + aac >= video[-1] + 1 / 30 - 0.1, segment.name
        video = sorted(float(p["pts_time"]) for p in _packets(folder / "index.m3u8", "v"))
        audio = sorted(float(p["pts_time"]) for p in _packets(folder / "index.m3u8", "a"))
        assert audio[-1] + aac - audio[0] == pytest.approx(video[-1] + 1 / 30 - video[0], abs=2 * aac)


def _mean_volume(media: Path) -> float:
    log = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-i", str(media), "-map", "0:a:0",  # noqa: S603
                          "-af", "volumedetect", "-f", "null", "-"], capture_output=True, text=True, check=True).stderr
    return float(log.split("mean_volume:")[1].split("dB")[0])


@pytest.mark.parametrize("chunk_seconds", [0, 6])
def test_every_audio_track_is_published_the_default_one_in_the_variants(services, tmp_path, chunk_seconds):
    """English then French (flagged default): the variants carry the French track, English is an alternate
    audio rendition (EXT-X-MEDIA TYPE=AUDIO, one group named by every variant) under hls/audio/en/."""
    import m3u8

    from vodflow.devtools.samples import make_two_language_sample

    path = Path(make_two_language_sample(str(tmp_path / "dubbed.mkv"), 14.0))
    source = upload(services, path, f"uploads/{uuid.uuid4().hex[:6]}/dubbed.mkv")
    run = run_all(services, {"source": source, "chunk_seconds": chunk_seconds, "ladder": ["360p", "240p"]},
                  f"run-dubbed-{chunk_seconds}")
    video_id = run["job"].video_id
    assert services.catalog.get_video(video_id)["status"] == "ready"
    services.storage.download_tree(layout.version_prefix(video_id, 1), str(tmp_path / "out"))
    hls_dir = tmp_path / "out" / "hls"
    report = check_tree(hls_dir, expected_duration=14.0, expect_audio=True)  # bandwidths count the alternate
    assert report.ok, report.summary()
    master = m3u8.load(str(hls_dir / "master.m3u8"))
    group = [(m.type, m.group_id, m.language, m.name, m.default, m.autoselect, m.uri) for m in master.media]
    assert group == [("AUDIO", "aud", "fr", "Français", "YES", "YES", None),
                     ("AUDIO", "aud", "en", "English", "NO", "YES", "audio/en/index.m3u8")]
    assert {p.stream_info.audio for p in master.playlists} == {"aud"}
    assert _mean_volume(hls_dir / "360p" / "index.m3u8") > -35  # the loud French track (-26 dB), muxed
    english = hls_dir / "audio" / "en" / "index.m3u8"
    assert _mean_volume(english) < -40  # the quiet English track (-50 dB), on its own
    playlist = m3u8.load(str(english))
    assert playlist.target_duration == m3u8.load(str(hls_dir / "360p" / "index.m3u8")).target_duration
    assert sum(s.duration for s in playlist.segments) == pytest.approx(14.0, abs=0.1)
    for segment in playlist.segments:
        assert _packets(english.parent / segment.uri, "a"), segment.uri
    events = {e["kind"]: e for e in services.catalog.get_events(video_id)}
    assert "audio_tracks" in events


def _cues(folder: Path) -> tuple[set[tuple[str, str]], set[str]]:
    """Every cue timing in a WebVTT rendition's segments, and their X-TIMESTAMP-MAP lines."""
    timings, maps = set(), set()
    for segment in sorted(folder.glob("seg_*.vtt")):
        for line in segment.read_text().splitlines():
            if "-->" in line:
                start, _, end = line.partition(" --> ")
                timings.add((start.strip(), end.strip()))
            elif line.startswith("X-TIMESTAMP-MAP="):
                maps.add(line)
    return timings, maps


@pytest.mark.parametrize("chunk_seconds", [0, 6])
def test_text_subtitles_and_sidecar_captions_become_webvtt_renditions(services, tmp_path, chunk_seconds):
    """An MKV with an SRT track, a sidecar WebVTT file and a broken sidecar SRT: two subtitle renditions whose cue
    times are the sources', on the video's segments and its first PTS; the broken file is refused with its code
    and line, and the video (with its pictures) is still published."""
    import m3u8

    from vodflow.devtools.samples import make_subtitled_sample

    key = uuid.uuid4().hex[:6]
    path = Path(make_subtitled_sample(str(tmp_path / "talk.mkv"), 14.0))
    source = upload(services, path, f"uploads/{key}/talk.mkv")
    vtt = tmp_path / "talk.fr.vtt"
    vtt.write_text("WEBVTT\n\n00:00:02.000 --> 00:00:03.500\nBonjour.\n\nnote-2\n00:00:08.250 --> 00:00:12.000\n"
                   "Deux segments.\n")
    bad = tmp_path / "talk.de.srt"
    bad.write_text("1\n00:00:01,000 --> 00:00:02,000\nGut.\n\n2\n00:00:03,000 -> 00:00:04,000\nKaputt.\n")
    captions = [{"source": upload(services, vtt, f"uploads/{key}/talk.fr.vtt"), "language": "fr"},
                {"source": upload(services, bad, f"uploads/{key}/talk.de.srt"), "language": "de"}]
    run = run_all(services, {"source": source, "chunk_seconds": chunk_seconds, "ladder": ["360p", "240p"],
                             "captions": captions}, f"run-subs-{chunk_seconds}")
    video_id = run["job"].video_id
    video = services.catalog.get_video(video_id)
    assert video["status"] == "ready" and video["poster_uri"]
    refused = [e["detail"] for e in services.catalog.get_events(video_id)
               if e["kind"] == "warning" and e["detail"].get("code") == "invalid_captions"]
    assert [(r["line"], r["source"]) for r in refused] == [(6, captions[1]["source"])]
    services.storage.download_tree(layout.version_prefix(video_id, 1), str(tmp_path / "out"))
    hls_dir = tmp_path / "out" / "hls"
    report = check_tree(hls_dir, expected_duration=14.0, expect_audio=True)
    assert report.ok, report.summary()
    master = m3u8.load(str(hls_dir / "master.m3u8"))
    subs = [(m.type, m.group_id, m.language, m.name, m.uri) for m in master.media if m.type == "SUBTITLES"]
    assert subs == [("SUBTITLES", "subs", "en", "English", "subs/en/index.m3u8"),
                    ("SUBTITLES", "subs", "fr", "Français", "subs/fr/index.m3u8")]
    assert {p.stream_info.subtitles for p in master.playlists} == {"subs"}
    video_playlist = m3u8.load(str(hls_dir / "360p" / "index.m3u8"))
    first_pts = round(float(_packets(hls_dir / "360p" / "seg_00000.ts", "v")[0]["pts_time"]) * 90000)
    # The embedded track's cues are where the source file has them (its packets, from the file's start: ffmpeg put
    # them 21 ms late when it muxed the sample, for AAC priming); sidecar files count from 0.
    probed = json.loads(subprocess.run(["ffprobe", "-v", "error", "-select_streams", "s", "-show_entries",  # noqa: S603
                                        "packet=pts_time,duration_time:format=start_time", "-of", "json", str(path)],
                                       capture_output=True, text=True, check=True).stdout)
    start = float(probed["format"]["start_time"])
    source_cues = {(f"00:00:{float(c['pts_time']) - start:06.3f}",
                    f"00:00:{float(c['pts_time']) + float(c['duration_time']) - start:06.3f}")
                   for c in probed["packets"]}
    assert len(source_cues) == 3
    for name, expected in (("en", source_cues),
                           ("fr", {("00:00:02.000", "00:00:03.500"), ("00:00:08.250", "00:00:12.000")})):
        playlist = m3u8.load(str(hls_dir / "subs" / name / "index.m3u8"))
        assert playlist.target_duration == video_playlist.target_duration
        assert [s.duration for s in playlist.segments] == [s.duration for s in video_playlist.segments]
        timings, maps = _cues(hls_dir / "subs" / name)
        assert timings == expected
        assert maps == {f"X-TIMESTAMP-MAP=MPEGTS:{first_pts},LOCAL:00:00:00.000"}
    # A cue that spans a segment boundary is in both segments.
    spanning = " --> ".join(sorted(source_cues)[1])  # 5.5 s to 7.25 s in the SRT
    for segment in ("seg_00000.vtt", "seg_00001.vtt"):
        assert spanning in (hls_dir / "subs" / "en" / segment).read_text()
    assert not services.storage.list_keys(layout.chunks_prefix(video_id, 1))


def test_a_chunked_source_without_sound_still_gets_its_subtitles(services, tmp_path):
    """No audio, an SRT track, chunks of 6 s: the `audio` item runs only to extract the subtitles."""
    import m3u8

    from vodflow.devtools.samples import make_subtitled_sample

    path = Path(make_subtitled_sample(str(tmp_path / "silent.mkv"), 14.0, audio=False))
    source = upload(services, path, f"uploads/{uuid.uuid4().hex[:6]}/silent.mkv")
    run = run_all(services, {"source": source, "chunk_seconds": 6, "ladder": ["240p"]}, "run-silent-subs")
    assert [item.label for item in run["items"]] == ["audio", "chunk 00", "chunk 01"]
    video_id = run["job"].video_id
    assert services.catalog.get_video(video_id)["status"] == "ready"
    services.storage.download_tree(layout.version_prefix(video_id, 1), str(tmp_path / "out"))
    hls_dir = tmp_path / "out" / "hls"
    assert check_tree(hls_dir, expected_duration=14.0, expect_audio=False).ok
    master = m3u8.load(str(hls_dir / "master.m3u8"))
    assert [(m.type, m.language) for m in master.media] == [("SUBTITLES", "en")]
    timings, _ = _cues(hls_dir / "subs" / "en")
    assert len(timings) == 3


def test_a_poster_that_could_not_be_made_is_stood_in_for_by_a_thumbnail(services, media):
    """The encode delivered thumbnails but no poster (its frame was never decoded): `publish` makes the first
    thumbnail the poster (a server-side copy, image/jpeg) and says so in a warning; the video is ready."""
    from vodflow import pipeline
    from vodflow.pipeline.work import result_from_dict

    source = upload(services, media["small"], f"uploads/{uuid.uuid4().hex[:6]}/small.mp4")
    job, probed, plan, items = pipeline.prepare({"source": source}, "run-no-poster", lambda step, job: None,
                                                services)
    [result] = [pipeline.transcode_dicts(job.to_dict(), probed.to_dict(), plan.to_dict(), item.to_dict(), services)
                for item in items]
    thumbs = layout.thumbs_prefix(job.video_id, job.version)
    poster = thumbs + "poster.jpg"
    assert poster in result["pictures"] and len(result["pictures"]) > 1
    services.storage.delete_key(poster)  # as if its frame had never been reached
    result["pictures"] = [key for key in result["pictures"] if key != poster]
    pipeline.publish(job, plan, [result_from_dict(result)], services)
    video = services.catalog.get_video(job.video_id)
    assert video["status"] == "ready" and video["poster_uri"].endswith("/thumbs/poster.jpg")
    head = services.storage.client.head_object(Bucket="vodflow", Key=poster)
    assert head["ContentType"] == "image/jpeg"
    assert services.storage.get_bytes(poster) == services.storage.get_bytes(sorted(result["pictures"])[0])
    warnings = [e for e in services.catalog.get_events(job.video_id) if e["kind"] == "warning"]
    assert any("thumbnail 001.jpg is the poster" in json.dumps(e, default=str) for e in warnings), warnings
