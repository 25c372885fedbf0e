"""``publish`` is safe to run again after the worker died at any of its steps — before the catalog switch, after
it, while pruning the old version, while notifying — as Airflow's retry runs it: the video ends ``ready`` with one
complete version (subtitles included), no encode lost, never back in ``publishing``, the app told once.

Real encodes (chunked and not) of a source with an embedded subtitle track, S3 over HTTP, the Postgres catalog,
a real webhook receiver. The worker's death is a storage or catalog whose chosen call raises an exception no
``except Exception`` catches, before or after the real call ran: nothing more of that try runs, as with SIGKILL.
"""

from __future__ import annotations

import importlib
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import m3u8
import pytest

from tests.integration.integrations.test_webhooks import receiver_verifies
from tests.receivers import Receiver
from vodflow import layout, pipeline
from vodflow.catalog import PROBING, PUBLISHING, READY
from vodflow.devtools.conformance import check_tree
from vodflow.integrations.webhooks import event_id

from .helpers import run_all, upload
from .test_notify import webhooks_to_a_receiver

pytestmark = pytest.mark.integration
publish_module = importlib.import_module("vodflow.pipeline.publish")  # the package's `publish` is the function
SECRET = "whsec_publish_retry"


class WorkerDied(BaseException):
    """The worker is gone at this point: nothing more of this try runs (no ``except Exception`` sees it)."""


class DiesAt:
    """``target`` (a Storage or a Catalog) with every call forwarded, except that the ``nth`` call of ``method``
    whose arguments ``match`` kills the worker: before the real call (``after=False``) or once it has returned."""

    def __init__(self, target: Any, method: str, *, nth: int = 1, after: bool = False,
                 match: Callable[..., bool] = lambda *args, **kwargs: True) -> None:
        self._target, self._method, self._nth, self._after, self._match = target, method, nth, after, match
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._target, name)
        if name != self._method:
            return real

        def call(*args: Any, **kwargs: Any) -> Any:
            if not self._match(*args, **kwargs):
                return real(*args, **kwargs)
            self.calls += 1
            if self.calls != self._nth:
                return real(*args, **kwargs)
            if self._after:
                real(*args, **kwargs)
            raise WorkerDied(f"the worker died {'after' if self._after else 'in'} {name}")

        return call


@pytest.fixture
def hooked(airflow_env) -> Iterator[tuple[pipeline.Services, Receiver]]:
    """No old version kept (each publish prunes the previous one); webhooks to this loopback receiver."""
    with webhooks_to_a_receiver(SECRET, keep_old_versions="0") as services_and_receiver:
        yield services_and_receiver


@pytest.fixture(scope="module")
def subtitled(tmp_path_factory) -> Path:
    from vodflow.devtools.samples import make_subtitled_sample

    return Path(make_subtitled_sample(str(tmp_path_factory.mktemp("retry") / "talk.mkv"), 14.0))


def version_two_encoded(services: pipeline.Services, receiver: Receiver, source: Path, chunk_seconds: int
                        ) -> tuple[pipeline.Job, dict, list[dict], list[dict]]:
    """Version 1 published whole; version 2 encoded (its work items done, chunks and WebVTT parked), not published."""
    video_id = f"retry-{uuid.uuid4().hex[:8]}"
    params = {"source": upload(services, source, f"uploads/{video_id}/talk.mkv"), "video_id": video_id,
              "chunk_seconds": chunk_seconds, "ladder": ["240p"], "callback_url": receiver.url}
    assert run_all(services, params, f"{video_id}-run-1")["result"]["published"]
    job, probed, plan, items = pipeline.prepare(params, f"{video_id}-run-2", lambda step, job: None, services)
    assert job.version == 2
    results = [pipeline.transcode_dicts(job.to_dict(), probed.to_dict(), plan.to_dict(), item.to_dict(), services)
               for item in items]
    if chunk_seconds:
        assert [item.label for item in items] == ["audio", "chunk 00", "chunk 01"]
    assert services.storage.list_keys(layout.chunks_prefix(video_id, 2)), "pieces are parked for publish"
    return job, plan.to_dict(), [item.to_dict() for item in items], results


def dying(services: pipeline.Services, job: pipeline.Job, step: str) -> pipeline.Services:
    """The services of a try whose worker dies at ``step``."""
    catalog, storage = services.catalog, services.storage
    if step == "before switch":  # everything built and uploaded, the switch's transaction never committed
        catalog = DiesAt(catalog, "publish")
    elif step == "after switch":  # the switch committed, nothing after it ran
        catalog = DiesAt(catalog, "publish", after=True)
    elif step == "pruning":  # half of the old version's objects deleted
        old = layout.version_prefix(job.video_id, 1)
        storage = DiesAt(storage, "delete_prefix", match=lambda prefix: prefix == old)
    elif step == "notify":  # the webhook delivered and recorded, the rest of notify never ran
        catalog = DiesAt(catalog, "add_event", after=True, match=lambda video_id, kind, **detail: kind == "webhook")
    return pipeline.Services(services.settings, catalog, storage)


def assert_one_complete_version(services: pipeline.Services, receiver: Receiver, job: pipeline.Job,
                                tmp_path: Path) -> None:
    video_id = job.video_id
    video = services.catalog.get_video(video_id)
    assert (video["status"], video["current_version"], video["error_code"]) == (READY, 2, None)
    versions = {v["version"]: v["status"] for v in services.catalog.get_versions(video_id)}
    assert versions == {1: "deleted", 2: "published"}
    assert services.storage.list_keys(layout.version_prefix(video_id, 1)) == []
    assert services.storage.list_keys(layout.chunks_prefix(video_id, 2)) == []
    # Version 2's history: `ready` once reached is where it stays (never `publishing` again).
    history = services.catalog.get_events(video_id, limit=5000)
    run_two = [e for e in history if e["kind"] == "status"]
    run_two = run_two[max(i for i, e in enumerate(run_two) if e["detail"].get("version") == 2):]
    statuses = [e["detail"]["status"] for e in run_two]
    assert statuses[-1] == READY and PUBLISHING not in statuses[statuses.index(READY):], statuses
    # The published tree is whole: every playlist conforms, the master lists its subtitles.
    out = tmp_path / "published"
    services.storage.download_tree(layout.version_prefix(video_id, 2), str(out))
    report = check_tree(out / "hls", expected_duration=14.0, expect_audio=True)
    assert report.ok, report.summary()
    master = m3u8.load(str(out / "hls" / "master.m3u8"))
    assert [(m.type, m.language, m.uri) for m in master.media if m.type == "SUBTITLES"] == [
        ("SUBTITLES", "en", "subs/en/index.m3u8")]
    assert {p.stream_info.subtitles for p in master.playlists} == {"subs"}
    subtitles = m3u8.load(str(out / "hls" / "subs" / "en" / "index.m3u8"))
    assert len(subtitles.segments) == len(m3u8.load(str(out / "hls" / "240p" / "index.m3u8")).segments)
    assert [r["status"] for r in services.catalog.get_renditions(video_id, 2)] == ["done"]
    # The app was told once that version 2 is ready, and the history records one delivery of it.
    ready = event_id(video_id, 2, "video.ready")
    sent = [json.loads(r.body) for r in receiver.received]
    assert all(receiver_verifies(r.headers["Vodflow-Signature"], r.body, SECRET) for r in receiver.received)
    assert [e["id"] for e in sent if e["version"] == 2] == [ready]
    assert [e["detail"]["delivered"] for e in history
            if e["kind"] == "webhook" and e["detail"]["event_id"] == ready] == [True]
    assert not services.scratch(job).exists()


@pytest.mark.parametrize("step", ["before switch", "after switch", "pruning", "notify"])
@pytest.mark.parametrize("chunk_seconds", [6, 0], ids=["chunked", "whole"])
def test_publish_retried_after_the_worker_died_ends_with_one_complete_version(hooked, subtitled, tmp_path,
                                                                              chunk_seconds, step):
    services, receiver = hooked
    job, plan, items, results = version_two_encoded(services, receiver, subtitled, chunk_seconds)
    with pytest.raises(WorkerDied):
        pipeline.publish_dicts(job.to_dict(), plan, items, results, dying(services, job, step))
    # Airflow's retry: the same task, the same inputs, a new worker.
    outcome = pipeline.publish_dicts(job.to_dict(), plan, items, results, services)
    assert outcome["published"] and outcome["master_uri"].endswith(f"/{job.video_id}/v2/hls/master.m3u8")
    assert_one_complete_version(services, receiver, job, tmp_path)


class DeleteErrors:
    """A storage whose ``delete_objects`` answers ``Errors`` for some keys under ``prefix``: what the Airflow hook
    raises then (AirflowException "Errors when deleting: [...]") after deleting the others."""

    def __init__(self, storage: Any, prefix: str) -> None:
        self._storage, self._prefix, self.failures = storage, prefix, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)

    def delete_prefix(self, prefix: str) -> int:
        if prefix != self._prefix:
            return self._storage.delete_prefix(prefix)
        from airflow.exceptions import AirflowException

        keys = self._storage.list_keys(prefix)
        self._storage.hook.delete_objects(self._storage.bucket, keys[1:])
        self.failures += 1
        raise AirflowException(f"Errors when deleting: {keys[:1]}")


def test_an_old_version_that_cannot_be_pruned_never_fails_the_published_one(hooked, subtitled, tmp_path,
                                                                             monkeypatch):
    """``delete_objects`` answering ``Errors`` for the old version, every time: the publish still succeeds (the
    video `ready` on version 2, the app told), a warning says the old version is left; a later prune removes it."""
    monkeypatch.setattr(publish_module, "CLEANUP_RETRY_SECONDS", (0.05, 0.05), raising=False)
    services, receiver = hooked
    job, plan, items, results = version_two_encoded(services, receiver, subtitled, 0)
    failing = DeleteErrors(services.storage, layout.version_prefix(job.video_id, 1))
    outcome = pipeline.publish_dicts(job.to_dict(), plan, items, results,
                                     pipeline.Services(services.settings, services.catalog, failing))
    assert outcome["published"] and failing.failures == 3  # tried, retried, then left for later
    video = services.catalog.get_video(job.video_id)
    assert (video["status"], video["current_version"]) == (READY, 2)
    versions = {v["version"]: v["status"] for v in services.catalog.get_versions(job.video_id)}
    assert versions == {1: "published", 2: "published"}
    warnings = [e["detail"]["message"] for e in services.catalog.get_events(job.video_id) if e["kind"] == "warning"]
    assert any("Old version 1 could not be removed yet" in w for w in warnings), warnings
    sent = [json.loads(r.body) for r in receiver.received]
    assert [(e["type"], e["version"]) for e in sent] == [("video.playable", 1), ("video.ready", 1), ("video.ready", 2)]
    # The next publish of the video (its finish step) prunes it.
    assert publish_module.prune_old_versions(services, job.video_id) == [1]
    assert_one_complete_version(services, receiver, job, tmp_path)


def test_a_finished_video_is_never_set_back_to_an_active_status(catalog):
    """`ready` (or `failed`) is only left by a new run's register: a late or retried step of the run that got
    there cannot set `publishing` (or any active status) again, and a second switch changes nothing."""
    video_id = f"status-{uuid.uuid4().hex[:8]}"
    version = catalog.register(video_id=video_id, source_uri="s3://b/k.mp4", etag="e", size=1, title=None,
                               run_id="run-1", ladder_version=1)
    assert catalog.set_status(video_id, "run-1", PROBING)
    catalog.publish(video_id=video_id, run_id="run-1", version=version, master_uri="s3://b/m.m3u8",
                    poster_uri=None, ladder_version=1)
    assert not catalog.set_status(video_id, "run-1", PUBLISHING)  # a retried step after the switch
    assert catalog.get_video(video_id)["status"] == READY
    failed_id = f"status-{uuid.uuid4().hex[:8]}"
    catalog.register(video_id=failed_id, source_uri="s3://b/f.mp4", etag="e", size=1, title=None, run_id="run-f",
                     ladder_version=1)
    assert catalog.fail(video_id=failed_id, run_id="run-f", version=1, code="not_a_video", message="Text.")
    assert not catalog.set_status(failed_id, "run-f", PUBLISHING)
    assert catalog.get_video(failed_id)["status"] == "failed"
    assert catalog.publish(video_id=video_id, run_id="run-1", version=version, master_uri="s3://b/m.m3u8",
                           poster_uri=None, ladder_version=1) == []
    assert catalog.get_video(video_id)["status"] == READY


def test_a_superseded_version_killed_while_being_removed_is_removed_by_the_retry(hooked, subtitled):
    """Run A's chunked encode is done, but run B (which took the video over from A, silent for hours) published a
    newer version meanwhile. A's publish dies while removing its now useless version; the retry removes it
    without trying to rebuild it (its parked pieces may be gone), and the video stays `ready` on B's version."""
    from vodflow.catalog import ACTIVE_RUN_STALE_AFTER, renditions, videos
    from vodflow.catalog.schema import now

    services, _ = hooked
    video_id = f"superseded-{uuid.uuid4().hex[:8]}"
    params = {"source": upload(services, subtitled, f"uploads/{video_id}/talk.mkv"), "video_id": video_id,
              "chunk_seconds": 6, "ladder": ["240p"]}
    job, probed, plan, items = pipeline.prepare(params, f"{video_id}-run-a", lambda step, job: None, services)
    results = [pipeline.transcode_dicts(job.to_dict(), probed.to_dict(), plan.to_dict(), item.to_dict(), services)
               for item in items]
    with services.catalog.engine.begin() as conn:  # run A went silent: run B may take over
        long_ago = now() - ACTIVE_RUN_STALE_AFTER - ACTIVE_RUN_STALE_AFTER
        conn.execute(videos.update().where(videos.c.id == video_id).values(updated_at=long_ago))
        conn.execute(renditions.update().where(renditions.c.video_id == video_id).values(updated_at=long_ago))
    assert run_all(services, params, f"{video_id}-run-b")["job"].version == 2
    mine = layout.version_prefix(video_id, 1)
    dying_storage = DiesAt(services.storage, "delete_prefix", match=lambda prefix: prefix == mine)
    with pytest.raises(WorkerDied):
        pipeline.publish_dicts(job.to_dict(), plan.to_dict(), [i.to_dict() for i in items], results,
                               pipeline.Services(services.settings, services.catalog, dying_storage))
    assert dying_storage.calls == 1
    outcome = pipeline.publish_dicts(job.to_dict(), plan.to_dict(), [i.to_dict() for i in items], results,
                                     services)
    assert outcome["published"] is False
    assert services.storage.list_keys(mine) == []
    video = services.catalog.get_video(video_id)
    assert (video["status"], video["current_version"]) == (READY, 2)
    assert {v["version"]: v["status"] for v in services.catalog.get_versions(video_id)} == {1: "deleted",
                                                                                              2: "published"}
    assert services.storage.list_keys(layout.version_prefix(video_id, 2) + "hls/master.m3u8")
