"""The upload watcher's exactly-once claims and the catalog migration that added them, on Postgres and SQLite."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.integration.catalog.test_catalog_migrations import build_release_catalog
from vodflow.catalog import SCHEMA_VERSION, Catalog, UploadObject, make_engine
from vodflow.triggers.watch import EPOCH, Watermark, new_objects, upload_run_id, video_id_for

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def objects(bucket: str, *names: str, etag: str = "e1") -> list[UploadObject]:
    return [UploadObject(bucket, f"uploads/{n}", etag, 100, T0 + timedelta(seconds=i)) for i, n in enumerate(names)]


def claim(catalog: Catalog, found: list[UploadObject]) -> list[dict]:
    return catalog.claim_uploads(found[0].bucket if found else "b", found, video_id_for, upload_run_id)


def test_each_object_is_claimed_once_and_new_content_is_a_new_claim(catalog):
    bucket = f"b{uuid.uuid4().hex[:8]}"
    found = objects(bucket, "a.mp4", "b.mp4", "c.mp4")
    first = claim(catalog, found)
    assert sorted(c["key"] for c in first) == ["uploads/a.mp4", "uploads/b.mp4", "uploads/c.mp4"]
    assert all(c["dag_run_id"] == upload_run_id(c["video_id"]) for c in first)
    # Seen again before the runs were started (e.g. the watcher died): the same claims, nothing new
    assert [c["dag_run_id"] for c in claim(catalog, found)] == [c["dag_run_id"] for c in first]
    catalog.mark_uploads_triggered(c["dag_run_id"] for c in first)
    assert claim(catalog, found) == []
    assert catalog.pending_claims(bucket) == 0
    changed = objects(bucket, "b.mp4", etag="e2")
    again = claim(catalog, changed)
    assert [(c["key"], c["etag"]) for c in again] == [("uploads/b.mp4", "e2")]
    assert again[0]["video_id"] != next(c["video_id"] for c in first if c["key"] == "uploads/b.mp4")
    assert catalog.seen_uploads(bucket, EPOCH) == {("uploads/a.mp4", "e1"), ("uploads/b.mp4", "e1"),
                                                   ("uploads/c.mp4", "e1"), ("uploads/b.mp4", "e2")}
    assert catalog.latest_upload(bucket) == T0 + timedelta(seconds=2)


def test_an_upload_the_app_already_started_is_known_not_claimed(catalog):
    bucket = f"b{uuid.uuid4().hex[:8]}"
    [obj] = objects(bucket, "app.mp4")
    catalog.register(video_id="app-chosen-id", source_uri=f"s3://{bucket}/{obj.key}", etag=obj.etag, size=100,
                     title="t", run_id="manual__1", ladder_version=1)
    assert claim(catalog, [obj]) == []
    assert catalog.seen_uploads(bucket, EPOCH) == {(obj.key, obj.etag)}


def test_concurrent_watchers_claim_each_object_once(pg_database):
    """Overlapping watcher runs (separate connections) race for the same listing: one claim per object."""
    bucket = f"b{uuid.uuid4().hex[:8]}"
    found = objects(bucket, *[f"v{i}.mp4" for i in range(20)])
    results: list[list[dict]] = []
    barrier = threading.Barrier(4)

    def watcher() -> None:
        catalog = Catalog(make_engine(pg_database))
        barrier.wait()
        results.append(claim(catalog, found))
        catalog.engine.dispose()

    threads = [threading.Thread(target=watcher) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    catalog = Catalog(make_engine(pg_database))
    with catalog.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT key, count(*) FROM uploads WHERE bucket = :b GROUP BY key"),
                            {"b": bucket}).all()
    assert len(rows) == 20 and all(count == 1 for _, count in rows)
    # Every watcher may see the pending claims, but they all name the same deterministic run ids
    assert {c["dag_run_id"] for r in results for c in r} == {upload_run_id(video_id_for(o)) for o in found}
    catalog.engine.dispose()


def test_new_objects_filter():
    bucket, prefix = "b", "uploads/"
    listing = [
        {"Key": "uploads/old.mp4", "ETag": '"1"', "Size": 5, "LastModified": T0 - timedelta(hours=3)},
        {"Key": "uploads/seen.mp4", "ETag": '"2"', "Size": 5, "LastModified": T0},
        {"Key": "uploads/seen.mp4", "ETag": '"3"', "Size": 5, "LastModified": T0},  # re-uploaded, new content
        {"Key": "uploads/fresh.mp4", "ETag": '"4"', "Size": 5, "LastModified": T0 + timedelta(seconds=58)},
        {"Key": "uploads/folder/", "ETag": '"5"', "Size": 0, "LastModified": T0},
        {"Key": "uploads/a/../b.mp4", "ETag": '"6"', "Size": 5, "LastModified": T0},
        {"Key": "other/x.mp4", "ETag": '"7"', "Size": 5, "LastModified": T0},
    ]
    mark = Watermark(T0 - timedelta(hours=2), frozenset({("uploads/seen.mp4", "2")}))
    found = new_objects(listing, bucket, prefix, mark, settled_before=T0 + timedelta(seconds=50))
    assert [(o.key, o.etag) for o in found] == [("uploads/seen.mp4", "3")]  # fresh.mp4 has not settled yet
    found = new_objects(listing, bucket, prefix, mark, settled_before=T0 + timedelta(minutes=5))
    assert [o.key for o in found] == ["uploads/seen.mp4", "uploads/fresh.mp4"]


def test_migration_2_upgrades_a_version_1_catalog(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'v1.db'}")
    build_release_catalog(engine, 1)  # a catalog as the first release left it, with a video in it
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO videos (id, source_uri, status, latest_version, created_at, updated_at) "
            "VALUES ('old', 's3://b/uploads/old.mp4', 'ready', 1, :t, :t)"), {"t": T0})
    catalog = Catalog(engine)
    assert catalog.schema_version() == 1
    assert catalog.migrate() == SCHEMA_VERSION >= 3  # and migration 3 (kept request) after it
    assert catalog.get_video("old")["source_uploaded_at"] is None
    assert catalog.videos_uploaded_between(T0 - timedelta(hours=1), T0 + timedelta(hours=1))[0]["id"] == "old"
    assert claim(catalog, objects("b", "n.mp4"))[0]["key"] == "uploads/n.mp4"
    engine.dispose()
