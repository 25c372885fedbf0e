"""Delete without a race: never a `ready` video whose media is gone, and a delete cut short can be finished.

Real S3 (moto over HTTP) and the real Postgres catalog; the published version is a real run's."""

from __future__ import annotations

import threading
import uuid

import pytest

from vodflow import layout, pipeline
from vodflow.catalog import AlreadyActive, BeingDeleted
from vodflow.pipeline.delete import delete_video
from vodflow.storage import Storage

pytestmark = pytest.mark.integration


@pytest.fixture
def services(airflow_env) -> pipeline.Services:
    return pipeline.Services.load()


@pytest.fixture
def published(services, media) -> str:
    """A `ready` video with its media in the bucket (one real run)."""
    key = f"uploads/{uuid.uuid4().hex[:6]}/delete-me.mp4"
    services.storage.client.upload_file(str(media["small"]), "vodflow", key)
    params = {"source": f"s3://vodflow/{key}", "ladder": ["240p"], "video_id": f"del-{uuid.uuid4().hex[:8]}"}
    job, probed, plan, items = pipeline.prepare(params, "run-1", lambda step, job: None, services)
    results = [pipeline.transcode(job, probed, plan, item, services) for item in items]
    pipeline.publish(job, plan, results, services)
    pipeline.discard_unpublished(job, services)
    assert services.catalog.get_video(job.video_id)["status"] == "ready"
    return job.video_id


def ready_without_media(services: pipeline.Services, video_id: str) -> bool:
    video = services.catalog.get_video(video_id)
    if video is None or video["status"] != "ready":
        return False
    master = layout.parse_source_uri(video["master_uri"]).key
    return master not in services.storage.list_keys(layout.video_prefix(video_id))


class StartsARunWhileDeleting(Storage):
    """The worst moment for a run to start (a retry, a reprocess): while the media is being removed."""

    def __init__(self, services: pipeline.Services, video_id: str) -> None:
        super().__init__(services.settings.aws_conn_id, services.settings.bucket)
        self.services, self.video_id, self.outcome = services, video_id, None

    def delete_prefix(self, prefix: str) -> int:
        video = self.services.catalog.get_video(self.video_id)
        try:
            pipeline.register({"source": video["source_uri"], "video_id": self.video_id, "ladder": ["240p"]},
                              "run-during-delete", self.services)
            self.outcome = "registered"
        except AlreadyActive as exc:
            self.outcome = exc
        return super().delete_prefix(prefix)


def test_a_run_starting_during_a_delete_stands_down(services, published):
    storage = StartsARunWhileDeleting(services, published)
    done = delete_video(services.catalog, storage, published)
    assert isinstance(storage.outcome, BeingDeleted), storage.outcome  # the run's prepare skips itself
    assert done is not None and done.deleted_objects > 0
    assert services.catalog.get_video(published) is None
    assert services.storage.list_keys(layout.video_prefix(published)) == []


def test_a_delete_refuses_a_video_being_built(services, published):
    video = services.catalog.get_video(published)
    pipeline.register({"source": video["source_uri"], "video_id": published}, "run-2", services)
    with pytest.raises(AlreadyActive):
        delete_video(services.catalog, services.storage, published)
    assert services.catalog.get_video(published)["status"] == "queued"
    assert services.storage.list_keys(layout.version_prefix(published, 1)), "media untouched"


class CrashesAfterRemovingMedia(Storage):
    def delete_prefix(self, prefix: str) -> int:
        super().delete_prefix(prefix)
        raise ConnectionError("the api-server died here")


def test_a_delete_cut_short_is_finished_by_deleting_again(services, published):
    crashing = CrashesAfterRemovingMedia(services.settings.aws_conn_id, services.settings.bucket)
    with pytest.raises(ConnectionError):
        delete_video(services.catalog, crashing, published)
    video = services.catalog.get_video(published)
    assert video["status"] == "deleting"  # not `ready` on media that is gone
    assert not ready_without_media(services, published)
    with pytest.raises(BeingDeleted):  # nothing can start on it meanwhile
        pipeline.register({"source": video["source_uri"], "video_id": published}, "run-3", services)
    assert delete_video(services.catalog, services.storage, published) is not None
    assert services.catalog.get_video(published) is None


def test_racing_runs_and_a_delete_never_leave_ready_without_media(services, published):
    """Real threads: runs keep trying to start (and fail at once, as a stopped task would) while a delete runs."""
    source = services.catalog.get_video(published)["source_uri"]
    stop = threading.Event()
    violations: list[str] = []

    def runs() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                job = pipeline.register({"source": source, "video_id": published, "ladder": ["240p"]},
                                        f"run-race-{n}", services)
            except AlreadyActive:  # busy, or being deleted (also when its row vanished under the register)
                continue
            except Exception as exc:  # anything else is a bug the thread would otherwise swallow
                violations.append(f"run {n}: {exc!r}")
                return
            pipeline.discard_unpublished(job, services)  # the run ends unpublished: the video falls back to its state
            if ready_without_media(services, published):
                violations.append(f"after run {n}")

    racer = threading.Thread(target=runs)
    racer.start()
    try:
        for _ in range(50):
            try:
                if delete_video(services.catalog, services.storage, published) is not None:
                    break
            except AlreadyActive:
                continue
    finally:
        stop.set()
        racer.join(timeout=60)
    assert not violations, violations
    assert not ready_without_media(services, published)
