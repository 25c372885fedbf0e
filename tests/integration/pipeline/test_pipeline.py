"""The DAG's steps as plain functions, in order, against S3 over HTTP and the Postgres catalog.

The Airflow wiring is tested end to end in tests/e2e; here each step's contract is checked in detail.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from vodflow import errors, layout, pipeline
from vodflow.devtools.conformance import check_tree
from vodflow.errors import BadInput

from .helpers import faststart_sample_and_cut, run_all, upload

pytestmark = pytest.mark.integration


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
    pipeline.discard_unpublished(job, services)
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


def test_a_failure_quoting_a_presigned_url_reaches_the_catalog_redacted(services, media):
    """An exception whose text quotes the source's presigned URL (an ffmpeg error does): the video's
    error_message, the rendition's and the history keep where it was, not the signature."""
    source = upload(services, media["small"], f"uploads/{uuid.uuid4().hex[:6]}/signed.mp4")
    job = pipeline.register({"source": source}, "run-signed", services)
    signed = services.source_url(job)
    assert "Signature=" in signed  # SigV4 X-Amz-Signature, or SigV2 Signature (moto's)
    pipeline.record_failure(job.to_dict(), "transcode", "240p", OSError(f"{signed}: Connection reset by peer"), 4,
                            services)
    video = services.catalog.get_video(job.video_id)
    rendition_errors = [e["detail"] for e in services.catalog.get_events(job.video_id) if e["kind"] == "rendition"]
    recorded = repr([video["error_message"], rendition_errors, services.catalog.get_events(job.video_id)])
    assert "Signature=" not in recorded and "X-Amz-" not in recorded and "AWSAccessKeyId" not in recorded
    assert f"{signed.split('?')[0]}: Connection reset by peer" in video["error_message"]


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


def test_a_per_title_probe_on_a_cut_upload_says_unreadable_at_once(services, media, caplog):
    """The per-title probe is the first thing to read past the header: on an upload cut at 40 % its windows at
    50 and 80 % find nothing. That is the file's fault (`unreadable`, never retried), confirmed from a local
    copy as an encode's failure is, not a machine error."""
    source = upload(services, media.bad("cut-faststart.mp4"), f"uploads/{uuid.uuid4().hex[:6]}/cut.mp4")
    job = pipeline.register({"source": source, "adaptive": True}, "run-cut-per-title", services)
    info = pipeline.probe_source(services, job)
    plan, [item] = pipeline.plan_work(services, job, info)
    with pytest.raises(BadInput) as caught:
        pipeline.transcode(job, info, plan, item, services)
    assert caught.value.code == errors.UNREADABLE, caught.value
    assert "confirming from a local copy" in caplog.text


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


def test_a_long_chunked_upload_cut_short_fails_as_unreadable(services, tmp_path):
    """A 60 s upload whose copy stopped after about 10 s (its header still says 60 s), in chunks of 30 s: the
    video is `failed` with `unreadable` (a chunk task or the join says so), nothing is published."""
    _, cut = faststart_sample_and_cut(tmp_path, 60.0, 1 / 6)
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
    pipeline.discard_unpublished(job, services)
    video = services.catalog.get_video(job.video_id)
    assert (video["status"], video["error_code"]) == ("failed", errors.UNREADABLE)
    assert video["current_version"] is None
    assert not services.storage.list_keys(layout.video_prefix(job.video_id))


def test_a_chunk_read_cut_off_is_confirmed_from_a_local_copy_and_succeeds(services, tmp_path, caplog,
                                                                          monkeypatch):
    """The upload is whole, but the stream a chunk and the audio task read stops early (a network read that broke
    off): both confirm from a downloaded copy instead of failing the video as `unreadable`."""
    whole, broken = faststart_sample_and_cut(tmp_path, 24.0, 1 / 3)
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


def test_a_work_item_that_failed_for_good_means_nothing_is_published(services, media):
    """`publish` is the run's teardown: with a chunk's result missing (that item failed for good and recorded
    why), it publishes nothing, removes what the other items uploaded and leaves the video failed with the
    item's reason; the version is marked failed and no scratch is left on this machine."""
    source = upload(services, media["no_audio"], f"uploads/{uuid.uuid4().hex[:6]}/clip.mp4")
    job, probed, plan, items = pipeline.prepare({"source": source, "chunk_seconds": 6, "ladder": ["240p"]},
                                                "run-item-failed", lambda step, job: None, services)
    assert [item.label for item in items] == ["chunk 00", "chunk 01"]
    results = [pipeline.transcode_dicts(job.to_dict(), probed.to_dict(), plan.to_dict(), item.to_dict(), services)
               for item in items[:-1]]
    assert services.storage.list_keys(layout.version_prefix(job.video_id, job.version))  # the others uploaded
    pipeline.record_failure(job.to_dict(), "transcode", items[-1].label, RuntimeError("worker lost"), 4, services)
    with pytest.raises(pipeline.WorkItemsFailed, match="1 of"):
        pipeline.publish_dicts(job.to_dict(), plan.to_dict(), [item.to_dict() for item in items], results,
                               services)
    assert services.storage.list_keys(layout.version_prefix(job.video_id, job.version)) == []
    video = services.catalog.get_video(job.video_id)
    assert (video["status"], video["error_code"], video["current_version"]) == ("failed", errors.INTERNAL_ERROR,
                                                                                   None)
    assert "transcode failed after 4 attempt(s): RuntimeError: worker lost" in video["error_message"]
    assert [v["status"] for v in services.catalog.get_versions(job.video_id)] == ["failed"]
    assert not services.scratch(job).exists()
