"""No run may replace another video's content: a run that names an existing video's id with another source fails
at ``register`` as ``invalid_request`` (bad input: no retry) whatever started it, and the video — its catalog
row, versions, history and published objects — is left exactly as it was. A re-run from the video's own source
(retry, reprocess) still builds a new version. Against S3 over HTTP and the Postgres and SQLite catalogs."""

from __future__ import annotations

import uuid

import pytest

from vodflow import errors, layout, pipeline
from vodflow.errors import BadInput
from vodflow.media.encode.ladder import LADDER_VERSION

from .helpers import run_all, upload

pytestmark = pytest.mark.integration


def snapshot(services: pipeline.Services, video_id: str) -> dict:
    """Everything a takeover could change: the row, its versions and history, and every published byte."""
    objects = {key: services.storage.client.get_object(Bucket="vodflow", Key=key)["Body"].read()
               for key in services.storage.list_keys(layout.video_prefix(video_id))}
    return {"video": services.catalog.get_video(video_id), "versions": services.catalog.get_versions(video_id),
            "events": services.catalog.get_events(video_id), "objects": objects}


@pytest.mark.parametrize("run_id", ["manual__cli", "upload__watcher", "reprocess__x__y", "asset_triggered__ev"])
def test_another_source_under_an_existing_video_id_is_refused_at_register_and_changes_nothing(
        services, media, run_id):
    video_id = f"owned-{uuid.uuid4().hex[:8]}"
    mine = upload(services, media["small"], f"uploads/{uuid.uuid4().hex[:6]}/mine.mp4")
    run_all(services, {"source": mine, "video_id": video_id, "title": "Mine"}, f"run-{video_id}")
    before = snapshot(services, video_id)
    assert before["video"]["status"] == "ready" and any(k.endswith("master.m3u8") for k in before["objects"])

    theirs = upload(services, media.bad("text.mp4"), f"uploads/{uuid.uuid4().hex[:6]}/theirs.mp4")
    with pytest.raises(BadInput) as caught:
        pipeline.register({"source": theirs, "video_id": video_id, "title": "Theirs"}, run_id, services)
    assert caught.value.code == errors.INVALID_REQUEST
    assert "video_id" in caught.value.message and "another source" in caught.value.message
    assert snapshot(services, video_id) == before  # not a byte, not a row, not an event

    # The video's own source is a re-run: allowed, a new version is built.
    job = pipeline.register({"source": mine, "video_id": video_id}, f"retry__{video_id}", services)
    assert job.version == 2 and services.catalog.get_video(video_id)["source_uri"] == mine


def test_the_catalog_refuses_another_source_under_the_row_lock(catalog):
    """``register`` itself (every path goes through it): OtherSource, nothing written."""
    from vodflow.catalog import OtherSource

    video_id = f"v-{uuid.uuid4().hex[:8]}"

    def register(source: str, run_id: str) -> int:
        return catalog.register(video_id=video_id, source_uri=source, etag="e1", size=10, title="t", run_id=run_id,
                                ladder_version=LADDER_VERSION)

    assert register("s3://vodflow/uploads/a.mp4", "run1") == 1
    catalog.fail(video_id=video_id, run_id="run1", version=1, code=errors.NOT_A_VIDEO, message="not a video")
    before = (catalog.get_video(video_id), catalog.get_versions(video_id), catalog.get_events(video_id))
    with pytest.raises(OtherSource):
        register("s3://vodflow/uploads/b.mp4", "run2")
    assert (catalog.get_video(video_id), catalog.get_versions(video_id), catalog.get_events(video_id)) == before
    assert register("s3://vodflow/uploads/a.mp4", "run3") == 2
