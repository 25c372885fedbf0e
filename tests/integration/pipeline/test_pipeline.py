"""The DAG's steps as plain functions, in order, against S3 over HTTP and the Postgres catalog.

The Airflow wiring is tested end to end in tests/e2e; here each step's contract is checked in detail.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import uuid
from pathlib import Path

import pytest

from vodflow import errors, layout, pipeline
from vodflow.devtools.conformance import check_tree
from vodflow.errors import BadInput

pytestmark = pytest.mark.integration


@pytest.fixture
def services(airflow_env) -> pipeline.Services:
    return pipeline.Services.load()


def _packets(playlist: Path, kind: str) -> list[dict]:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", kind, "-show_entries",  # noqa: S603
                          "packet=pts_time", "-of", "json", str(playlist)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["packets"]


def upload(services: pipeline.Services, path: Path, key: str) -> str:
    services.storage.client.upload_file(str(path), "vodflow", key)
    return f"s3://vodflow/{key}"


def run_all(services: pipeline.Services, params: dict, run_id: str) -> dict:
    steps: list[str] = []
    job, probed, plan, items = pipeline.prepare(params, run_id, lambda step, job: steps.append(step), services)
    assert steps == ["register", "probe", "plan"]
    # Through the XCom codecs, as the DAG's tasks call them.
    results = [pipeline.transcode_dicts(job.to_dict(), probed.to_dict(), plan.to_dict(), item.to_dict(), services)
               for item in items]
    result = pipeline.publish_dicts(job.to_dict(), plan.to_dict(), results, services)
    pipeline.finish(job, services)
    return {"job": job, "probed": probed, "result": result, "items": items}


def test_a_video_is_published_whole(services, media, tmp_path):
    key = f"uploads/{uuid.uuid4().hex[:6]}/-i etc passwd; rm -rf.mp4"  # a hostile name is only a name
    run = run_all(services, {"source": upload(services, media["small"], key), "title": "<b>Small</b>"}, "run-a")
    job = run["job"]
    assert job.video_id == layout.derive_video_id("vodflow", key, job.etag)
    video = services.catalog.get_video(job.video_id)
    assert video["status"] == "ready" and video["current_version"] == 1 and video["title"] == "<b>Small</b>"
    assert video["master_uri"] == f"s3://vodflow/videos/{job.video_id}/v1/hls/master.m3u8"
    assert video["poster_uri"].endswith("/v1/thumbs/poster.jpg")

    prefix = layout.version_prefix(job.video_id, 1)
    keys = set(services.storage.list_keys(prefix))
    assert f"{prefix}hls/master.m3u8" in keys
    assert {f"{prefix}hls/240p/index.m3u8", f"{prefix}hls/240p/iframes.m3u8", f"{prefix}thumbs/poster.jpg",
            f"{prefix}thumbs/001.jpg", f"{prefix}thumbs/002.jpg"} <= keys
    assert any(k.endswith(".ts") for k in keys)
    services.storage.download_tree(prefix, str(tmp_path))
    report = check_tree(tmp_path / "hls", expected_duration=video["duration"], expect_audio=True)
    assert report.ok, report.summary()
    renditions = services.catalog.get_renditions(job.video_id, 1)
    assert [(r["name"], r["status"], r["progress"]) for r in renditions] == [("240p", "done", 100)]
    assert renditions[0]["bytes"] == sum(p.stat().st_size for p in (tmp_path / "hls" / "240p").glob("*.ts"))
    scratch = Path(services.settings.scratch_dir, job.video_id)
    assert not scratch.exists() or not any(scratch.rglob("*")), "scratch must be cleaned"


def test_reprocessing_publishes_new_versions_and_prunes_old_ones(services, media):
    source = upload(services, media["small"], f"uploads/{uuid.uuid4().hex[:6]}/again.mp4")
    video_id = f"again-{uuid.uuid4().hex[:6]}"
    for number in (1, 2, 3):
        run = run_all(services, {"source": source, "video_id": video_id}, f"run-{number}")
        assert run["job"].version == number
    video = services.catalog.get_video(video_id)
    assert video["current_version"] == 3
    versions = {v["version"]: v["status"] for v in services.catalog.get_versions(video_id)}
    assert versions == {1: "deleted", 2: "published", 3: "published"}  # the previous version is kept
    assert services.storage.list_keys(layout.version_prefix(video_id, 1)) == []
    assert services.storage.list_keys(layout.version_prefix(video_id, 2))


def test_bad_input_fails_with_its_reason_and_publishes_nothing(services, media):
    source = upload(services, media.bad("text.mp4"), f"uploads/{uuid.uuid4().hex[:6]}/notes.mp4")
    job = pipeline.register({"source": source}, "run-bad", services)
    with pytest.raises(BadInput) as caught:
        pipeline.probe_source(services, job)
    pipeline.record_failure(job.to_dict(), "probe", None, caught.value, 1, services)
    pipeline.finish(job, services)
    video = services.catalog.get_video(job.video_id)
    assert (video["status"], video["error_code"]) == ("failed", errors.NOT_A_VIDEO)
    assert video["error_message"] == "The file is text, not a video."
    assert video["current_version"] is None
    assert services.storage.list_keys(layout.video_prefix(job.video_id)) == []


def test_missing_source_and_invalid_request_are_recorded(services):
    with pytest.raises(BadInput) as caught:
        pipeline.register({"source": "s3://vodflow/uploads/does-not-exist.mp4"}, "run-missing", services)
    assert caught.value.code == errors.SOURCE_MISSING
    video_id = layout.derive_video_id("vodflow", "uploads/does-not-exist.mp4", "")
    assert services.catalog.get_video(video_id)["error_code"] == errors.SOURCE_MISSING

    with pytest.raises(BadInput) as caught:
        pipeline.register({"source": "s3://vodflow/uploads/../etc/passwd", "video_id": "bad-req"}, "run-inv", services)
    assert caught.value.code == errors.INVALID_REQUEST
    rejected = services.catalog.get_video("bad-req")
    assert rejected["status"] == "failed" and rejected["source_uri"] == "s3://vodflow/uploads/../etc/passwd"


def test_an_unexpected_failure_is_recorded_as_internal_error(services, media):
    source = upload(services, media["small"], f"uploads/{uuid.uuid4().hex[:6]}/x.mp4")
    job = pipeline.register({"source": source}, "run-x", services)
    pipeline.record_failure(job.to_dict(), "transcode", "240p", ConnectionError("S3 went away"), 4, services)
    video = services.catalog.get_video(job.video_id)
    assert video["error_code"] == errors.INTERNAL_ERROR
    assert video["error_message"] == "transcode failed after 4 attempt(s): ConnectionError: S3 went away"


def test_a_truncated_upload_is_confirmed_locally_before_it_is_blamed(services, media, caplog):
    """Streaming from S3 sees a short file; the task re-encodes from a downloaded copy, then says `unreadable`."""
    source = upload(services, media.bad("cut-faststart.mp4"), f"uploads/{uuid.uuid4().hex[:6]}/cut.mp4")
    job = pipeline.register({"source": source}, "run-cut", services)
    info = pipeline.probe_source(services, job)  # the header is intact
    plan, [item] = pipeline.plan_work(services, job, info)  # one work item: every rendition from one decode
    assert item.label == " ".join(plan.names)
    with pytest.raises(BadInput) as caught:
        pipeline.transcode(job, info, plan, item, services)
    assert caught.value.code == errors.UNREADABLE and "truncated" in caught.value.message
    assert "confirming from a local copy" in caplog.text
    assert not any(Path(services.settings.scratch_dir, job.video_id).rglob("source*")), "local copy removed"


def test_a_long_video_is_encoded_in_chunks_and_joined_once(services, tmp_path):
    """31 s in 12 s chunks (conf chunk_seconds): one audio item and three chunk items, joined into renditions
    that pass every HLS check; the intermediate pieces are gone from the bucket afterwards."""
    from vodflow.devtools.samples import SampleSpec, make_sample

    path = Path(make_sample(str(tmp_path / "long.mp4"), SampleSpec(640, 360, 31.0, "30", audio=True)))
    source = upload(services, path, f"uploads/{uuid.uuid4().hex[:6]}/long.mp4")
    run = run_all(services, {"source": source, "chunk_seconds": 12, "ladder": ["360p", "240p"]}, "run-chunked")
    assert [item.label for item in run["items"]] == ["audio", "chunk 00", "chunk 01", "chunk 02"]
    video_id = run["job"].video_id
    video = services.catalog.get_video(video_id)
    assert (video["status"], video["current_version"]) == ("ready", 1)
    assert [(r["name"], r["status"], r["progress"]) for r in services.catalog.get_renditions(video_id, 1)] == [
        ("360p", "done", 100), ("240p", "done", 100)]
    assert not services.storage.list_keys(layout.chunks_prefix(video_id, 1))
    # Each chunk made the pictures in its stretch: the whole set, as an unchunked run makes it.
    thumbs = services.storage.list_keys(layout.thumbs_prefix(video_id, 1))
    assert sorted(k.rsplit("/", 1)[1] for k in thumbs) == [f"{i:03d}.jpg" for i in range(1, 11)] + ["poster.jpg"]
    assert video["poster_uri"].endswith("/v1/thumbs/poster.jpg")
    services.storage.download_tree(layout.version_prefix(video_id, 1), str(tmp_path / "out"))
    report = check_tree(tmp_path / "out" / "hls", expected_duration=31.0, expect_audio=True)
    assert report.ok, report.summary()


def test_a_truncated_upload_in_a_chunked_run_fails_as_unreadable(services, media, caplog):
    """The header says 10 s, the data stops at 4 s: the chunk that holds the cut comes out short of frames, and
    its task (after confirming it from a downloaded copy) refuses it, instead of publishing a short video."""
    source = upload(services, media.bad("cut-faststart.mp4"), f"uploads/{uuid.uuid4().hex[:6]}/cut.mp4")
    job = pipeline.register({"source": source, "chunk_seconds": 6, "ladder": ["240p"]}, "run-cut-chunked", services)
    info = pipeline.probe_source(services, job)
    plan, items = pipeline.plan_work(services, job, info)
    assert [item.label for item in items] == ["audio", "chunk 00", "chunk 01"]
    with pytest.raises(BadInput) as caught:
        results = [pipeline.transcode(job, info, plan, item, services) for item in items]
        pipeline.publish(job, plan, results, services)
    assert caught.value.code == errors.UNREADABLE and "truncated" in caught.value.message
    assert "confirming from a local copy" in caplog.text


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


def test_a_long_chunked_upload_cut_short_fails_as_unreadable(services, tmp_path):
    """A 60 s upload whose copy stopped after about 10 s (its header still says 60 s), in chunks of 30 s: the
    video is `failed` with `unreadable` (a chunk task or the join says so), nothing is published."""
    from vodflow.devtools.samples import SampleSpec, make_sample

    whole = Path(make_sample(str(tmp_path / "long.mp4"), SampleSpec(320, 180, 60.0, "30", audio=True,
                                                                     extra_output_args=("-movflags", "+faststart"))))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 6])
    source = upload(services, cut, f"uploads/{uuid.uuid4().hex[:6]}/cut-long.mp4")
    job = pipeline.register({"source": source, "chunk_seconds": 30}, "run-cut-long", services)
    info = pipeline.probe_source(services, job)
    assert info.duration == pytest.approx(60.0, abs=0.1)
    plan, items = pipeline.plan_work(services, job, info)
    assert [item.label for item in items] == ["audio", "chunk 00", "chunk 01"]
    with pytest.raises(BadInput) as caught:
        results = [pipeline.transcode(job, info, plan, item, services) for item in items]
        pipeline.publish(job, plan, results, services)
    pipeline.record_failure(job.to_dict(), "publish", None, caught.value, 1, services)
    pipeline.finish(job, services)
    video = services.catalog.get_video(job.video_id)
    assert (video["status"], video["error_code"]) == ("failed", errors.UNREADABLE)
    assert video["current_version"] is None
    assert not services.storage.list_keys(layout.video_prefix(job.video_id))


def test_a_chunk_read_cut_off_is_confirmed_from_a_local_copy_and_succeeds(services, tmp_path, caplog,
                                                                          monkeypatch):
    """The upload is whole, but the stream a chunk and the audio task read stops early (a network read that broke
    off): both confirm from a downloaded copy instead of failing the video as `unreadable`."""
    from vodflow.devtools.samples import SampleSpec, make_sample

    whole = Path(make_sample(str(tmp_path / "whole.mp4"), SampleSpec(320, 180, 24.0, "30", audio=True,
                                                                      extra_output_args=("-movflags", "+faststart"))))
    broken = tmp_path / "broken-stream.mp4"
    broken.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    source = upload(services, whole, f"uploads/{uuid.uuid4().hex[:6]}/whole.mp4")
    job = pipeline.register({"source": source, "chunk_seconds": 12}, "run-cut-off", services)
    info = pipeline.probe_source(services, job)
    plan, items = pipeline.plan_work(services, job, info)
    monkeypatch.setattr(type(services), "source_url", lambda self, job, probed=None: str(broken))
    results = [pipeline.transcode(job, info, plan, item, services) for item in items]
    assert caplog.text.count("confirming from a local copy") >= 1
    pipeline.publish(job, plan, results, services)
    video = services.catalog.get_video(job.video_id)
    assert (video["status"], video["duration"]) == ("ready", pytest.approx(24.0, abs=0.1))


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
