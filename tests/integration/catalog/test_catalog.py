"""The catalog on a real Postgres (and on SQLite, the embedded demo's backend)."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.tcpproxy import CuttableProxy
from vodflow.catalog import (
    ACTIVE_RUN_STALE_AFTER,
    FAILED,
    PROBING,
    QUEUED,
    READY,
    SCHEMA_VERSION,
    TRANSCODING,
    AlreadyActive,
    AlreadyEncoded,
    Catalog,
    RenditionPlan,
    Superseded,
    VariantRecord,
    engine_url_for_connection,
    make_engine,
    videos,
)
from vodflow.media.source.info import SourceInfo

pytestmark = pytest.mark.integration


def new_id() -> str:
    return f"vid_{uuid.uuid4().hex[:12]}"


def register(catalog: Catalog, video_id: str, run_id: str) -> int:
    return catalog.register(video_id=video_id, source_uri="s3://vodflow/uploads/a.mp4", etag="e1", size=10,
                            title="A", run_id=run_id, ladder_version=1)


SOURCE = SourceInfo(duration=12.5, width=1920, height=1080, fps="30000/1001", vfr=False, video_codec="h264",
                    pix_fmt="yuv420p", bit_depth=8, hdr=False, interlaced=False, rotation=0, has_audio=True,
                    audio_codec="aac", audio_channels=2, format_name="mov", size_bytes=10, bitrate=1)


def test_migrations_are_recorded_and_idempotent(catalog):
    assert catalog.schema_version() == SCHEMA_VERSION
    assert catalog.migrate() == SCHEMA_VERSION
    tables = set(sa.inspect(catalog.engine).get_table_names())
    assert {"videos", "renditions", "video_events", "video_versions", "vodflow_schema_version"} <= tables


def test_concurrent_first_migrations_on_postgres(pg_database):
    """Many workers starting at once on an empty database: exactly one applies each migration."""
    name = f"vodflow_mig_{uuid.uuid4().hex[:8]}"
    from tests.conftest import create_test_database, drop_test_database

    url = create_test_database(name)
    try:
        catalogs = [Catalog(make_engine(url)) for _ in range(4)]
        failures: list[BaseException] = []

        def run(c: Catalog) -> None:
            try:
                c.migrate()
            except BaseException as exc:  # collected and asserted below
                failures.append(exc)

        threads = [threading.Thread(target=run, args=(c,)) for c in catalogs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not failures
        with catalogs[0].engine.connect() as conn:
            versions = conn.execute(sa.text("SELECT version FROM vodflow_schema_version")).scalars().all()
        assert versions == list(range(1, SCHEMA_VERSION + 1))
        for c in catalogs:
            c.engine.dispose()
    finally:
        drop_test_database(name)


def test_a_video_goes_through_the_status_model_with_history(catalog):
    video_id = new_id()
    assert register(catalog, video_id, "run1") == 1
    assert register(catalog, video_id, "run1") == 1, "registering the same run again is idempotent"
    catalog.set_status(video_id, "run1", PROBING)
    catalog.record_source(video_id, "run1", SOURCE)
    catalog.plan_renditions(video_id, "run1", 1, [RenditionPlan("720p", 1280, 720, 3000, 128, 29.97),
                                                  RenditionPlan("360p", 640, 360, 800, 96, 29.97)])
    catalog.renditions_started(video_id, 1, ["720p"])
    catalog.renditions_progress_at_least(video_id, 1, ["720p"], 42.0)
    catalog.renditions_progress_at_least(video_id, 1, ["720p"], 17.0)  # a late report never moves it back
    rows = {r["name"]: r for r in catalog.get_renditions(video_id, 1)}
    assert rows["720p"]["status"] == "running" and rows["720p"]["progress"] == 42.0
    assert rows["360p"]["status"] == "pending"
    catalog.rendition_done(video_id, 1, "720p", codecs="avc1.64001f,mp4a.40.2", bytes_=1000, segments=2)
    catalog.rendition_done(video_id, 1, "360p", codecs="avc1.64001e,mp4a.40.2", bytes_=300, segments=2)
    older = catalog.publish(video_id=video_id, run_id="run1", version=1, master_uri="s3://b/m.m3u8",
                            poster_uri="s3://b/p.jpg", ladder_version=1,
                            variants=[VariantRecord("720p", 3_300_000, 3_200_000, "s3://b/720p/index.m3u8")])
    assert older == []
    video = catalog.get_video(video_id)
    assert video["status"] == READY and video["current_version"] == 1 and video["duration"] == 12.5
    assert video["fps"] == pytest.approx(29.97) and video["finished_at"] >= video["started_at"]
    assert video["created_at"].tzinfo is not None
    rows = {r["name"]: r for r in catalog.get_renditions(video_id, 1)}
    assert rows["720p"]["bandwidth"] == 3_300_000 and rows["720p"]["progress"] == 100
    statuses = [e["detail"]["status"] for e in catalog.get_events(video_id) if e["kind"] == "status"]
    assert statuses == [QUEUED, PROBING, TRANSCODING, READY]
    kinds = [e["kind"] for e in catalog.get_events(video_id)]
    assert "probed" in kinds and "planned" in kinds and kinds.count("rendition") == 3


def test_renditions_carry_their_codec_and_dynamic_range_and_a_replan_keeps_the_other_codecs(catalog):
    video_id = new_id()
    register(catalog, video_id, "run1")
    catalog.plan_renditions(video_id, "run1", 1, [
        RenditionPlan("360p", 640, 360, 800, 96, 30.0), RenditionPlan("720p", 1280, 720, 3000, 128, 30.0),
        RenditionPlan("hevc-720p", 1280, 720, 1950, 128, 30.0, codec="hevc", dynamic_range="PQ"),
        RenditionPlan("av1-360p", 640, 360, 400, 96, 30.0, codec="av1", dynamic_range="PQ"),
        RenditionPlan("av1-720p", 1280, 720, 1500, 128, 30.0, codec="av1", dynamic_range="PQ")])
    # A per-title decision re-plans the H.264 rungs only: the other codecs' rows stay.
    catalog.plan_renditions(video_id, "run1", 1, [RenditionPlan("720p", 1280, 720, 2400, 128, 30.0)])
    catalog.renditions_started(video_id, 1, ["720p", "av1-720p", "hevc-720p"])
    catalog.rendition_done(video_id, 1, "av1-720p", codecs="av01.0.05M.10", bytes_=500, segments=1)
    catalog.rendition_done(video_id, 1, "hevc-720p", codecs="hvc1.1.6.L93.B0", bytes_=700, segments=1,
                           dynamic_range="HLG")  # what was encoded, when it differs from the plan
    rows = catalog.get_renditions(video_id, 1)
    assert [(r["name"], r["codec"], r["dynamic_range"], r["status"]) for r in rows] == [
        ("720p", "h264", "SDR", "running"), ("av1-720p", "av1", "PQ", "done"), ("av1-360p", "av1", "PQ", "pending"),
        ("hevc-720p", "hevc", "HLG", "done")]  # H.264 first, then the registry's order, largest first
    assert rows[0]["video_kbps"] == 2400 and rows[1]["bytes"] == 500
    catalog.record_variants(video_id, 1, [VariantRecord("av1-720p", 1_700_000, 1_500_000, "s3://b/av1/index.m3u8")])
    assert {r["name"]: r["bandwidth"] for r in catalog.get_renditions(video_id, 1)}["av1-720p"] == 1_700_000
    listed, _ = catalog.list_videos(search=video_id)
    assert [r["name"] for r in listed[0]["renditions"]] == [r["name"] for r in rows]


def test_a_new_run_builds_a_new_version_and_the_switch_is_monotonic(catalog):
    video_id = new_id()
    assert register(catalog, video_id, "run1") == 1
    with pytest.raises(AlreadyActive):  # run1 is building it: a second run at once stands down
        register(catalog, video_id, "run2")
    assert register(catalog, video_id, "run1") == 1  # a retried register of the same run is fine
    # run1 went silent for hours (died without its teardown): run2 may take over
    with catalog.engine.begin() as conn:
        conn.execute(videos.update().where(videos.c.id == video_id).values(
            updated_at=datetime.now(UTC) - ACTIVE_RUN_STALE_AFTER - timedelta(minutes=1)))
    assert register(catalog, video_id, "run2") == 2
    assert "takeover" in [e["kind"] for e in catalog.get_events(video_id)]
    # run2 owns the video now: run1 can no longer change its status
    assert not catalog.set_status(video_id, "run1", PROBING)
    assert catalog.publish(video_id=video_id, run_id="run2", version=2, master_uri="m2", poster_uri=None,
                           ladder_version=1) == []
    with pytest.raises(Superseded):
        catalog.publish(video_id=video_id, run_id="run1", version=1, master_uri="m1", poster_uri=None,
                        ladder_version=1)
    assert catalog.get_video(video_id)["master_uri"] == "m2"
    # publishing the same version twice (a retried task) is harmless
    assert catalog.publish(video_id=video_id, run_id="run2", version=2, master_uri="m2", poster_uri=None,
                           ladder_version=1) == []
    assert register(catalog, video_id, "run3") == 3
    older = catalog.publish(video_id=video_id, run_id="run3", version=3, master_uri="m3", poster_uri=None,
                            ladder_version=1)
    assert older == [2]  # v1 was never published


def test_a_watcher_run_queued_behind_an_apps_run_for_the_same_object_stands_down(catalog):
    """An app triggered through Airflow's own API writes no claim until its run starts; queued behind
    max_active_videos, the watcher claims the object too. Whichever registers second stands down: once done or
    failed, the object is not encoded again by the watcher; a run of the watcher's own is still idempotent."""
    video_id = new_id()
    assert register(catalog, video_id, "manual__app") == 1
    assert catalog.publish(video_id=video_id, run_id="manual__app", version=1, master_uri="m1", poster_uri=None,
                           ladder_version=1) == []

    def watcher(run_id: str, etag: str = "e1") -> int:
        return catalog.register(video_id=video_id, source_uri="s3://vodflow/uploads/a.mp4", etag=etag, size=10,
                                title="A", run_id=run_id, ladder_version=1, once_per_object=True)

    with pytest.raises(AlreadyEncoded):
        watcher(f"upload__{video_id}")
    assert catalog.get_video(video_id)["status"] == READY and catalog.get_video(video_id)["latest_version"] == 1
    assert register(catalog, video_id, "retry__1") == 2  # a retry or reprocess is asked for: it re-encodes
    other = new_id()  # the watcher's own run, registered first, is not refused by itself when retried
    assert catalog.register(video_id=other, source_uri="s3://vodflow/uploads/b.mp4", etag="e2", size=10,
                            title="B", run_id="upload__b", ladder_version=1, once_per_object=True) == 1
    assert catalog.register(video_id=other, source_uri="s3://vodflow/uploads/b.mp4", etag="e2", size=10,
                            title="B", run_id="upload__b", ladder_version=1, once_per_object=True) == 1


def test_failure_keeps_the_published_version_readable(catalog):
    video_id = new_id()
    register(catalog, video_id, "run1")
    catalog.publish(video_id=video_id, run_id="run1", version=1, master_uri="m1", poster_uri=None, ladder_version=1)
    register(catalog, video_id, "run2")
    catalog.plan_renditions(video_id, "run2", 2, [RenditionPlan("720p", 1280, 720, 3000, 128, 30)])
    assert catalog.fail(video_id=video_id, run_id="run2", version=2, code="unreadable", message="broken")
    video = catalog.get_video(video_id)
    # Still served from version 1, so still ready; the failed rebuild's reason is kept
    assert video["status"] == READY and video["error_code"] == "unreadable"
    assert video["current_version"] == 1 and video["master_uri"] == "m1"
    assert catalog.get_renditions(video_id, 2)[0]["status"] == FAILED
    assert {v["version"]: v["status"] for v in catalog.get_versions(video_id)} == {1: "published", 2: "failed"}
    assert not catalog.fail(video_id=video_id, run_id="someone-else", version=None, code="x", message="y")


def test_deleting_a_video_removes_its_rows_and_is_refused_while_a_run_builds_it(catalog):
    video_id, neighbour = new_id(), new_id()
    for vid in (video_id, neighbour):
        register(catalog, vid, "run1")
        catalog.plan_renditions(vid, "run1", 1, [RenditionPlan("720p", 1280, 720, 3000, 128, 30)])

    def rows(vid: str) -> tuple[int, int, int]:
        return (len(catalog.get_renditions(vid, 1)), len(catalog.get_versions(vid)), len(catalog.get_events(vid)))

    kept = rows(video_id)
    assert catalog.get_video(video_id)["status"] == TRANSCODING and min(kept) >= 1
    with pytest.raises(AlreadyActive):  # a run is building it: nothing is removed under its feet
        catalog.delete_video(video_id)
    assert catalog.get_video(video_id)["status"] == TRANSCODING and rows(video_id) == kept

    catalog.publish(video_id=video_id, run_id="run1", version=1, master_uri="m1", poster_uri=None, ladder_version=1)
    assert catalog.delete_video(video_id) is True
    assert catalog.get_video(video_id) is None and rows(video_id) == (0, 0, 0)
    assert catalog.delete_video(video_id) is False  # nothing left to delete
    assert catalog.get_video(neighbour)["status"] == TRANSCODING and rows(neighbour) == kept  # only that video

    assert catalog.fail(video_id=neighbour, run_id="run1", version=1, code="unreadable", message="broken")
    assert catalog.delete_video(neighbour) is True  # a failed video can be deleted too
    assert catalog.get_video(neighbour) is None and rows(neighbour) == (0, 0, 0)


def test_engine_from_airflow_connection(airflow_env, pg_database):
    url = engine_url_for_connection("vodflow_catalog")
    assert url.get_backend_name() == "postgresql"
    assert url.database == sa.make_url(pg_database).database


def test_two_runs_registering_a_new_video_at_once_one_wins(pg_database):
    """The same upload triggered twice at the same moment: one run builds it, the other is told so."""
    video_id = new_id()
    outcomes: list[object] = []
    barrier = threading.Barrier(2)

    def run(run_id: str) -> None:
        catalog = Catalog(make_engine(pg_database))
        barrier.wait()
        try:
            outcomes.append(register(catalog, video_id, run_id))
        except AlreadyActive as exc:
            outcomes.append(exc)
        finally:
            catalog.engine.dispose()

    threads = [threading.Thread(target=run, args=(f"run{i}",)) for i in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(type(o).__name__ for o in outcomes) == ["AlreadyActive", "int"]
    assert 1 in outcomes


@pytest.fixture
def catalog_behind_proxy(pg_database):
    """The catalog reaching Postgres through a TCP proxy that a test can cut (as a restart would)."""
    url = sa.make_url(pg_database)
    proxy = CuttableProxy(url.host or "127.0.0.1", url.port or 5432).start()
    catalog = Catalog(make_engine(url.set(host="127.0.0.1", port=proxy.port)), reconnect_seconds=30)
    catalog.migrate()
    yield catalog, proxy
    catalog.engine.dispose()
    proxy.stop()


def test_a_call_waits_for_the_database_to_come_back(catalog_behind_proxy):
    catalog, proxy = catalog_behind_proxy
    video_id = new_id()
    register(catalog, video_id, "run-1")
    proxy.cut()  # open connections dropped, new ones refused: Postgres restarting
    threading.Timer(3.0, proxy.restore).start()
    started = time.monotonic()
    assert catalog.set_status(video_id, "run-1", PROBING)
    assert time.monotonic() - started >= 2.5  # it really waited through the outage
    assert proxy.refused >= 1
    assert catalog.get_video(video_id)["status"] == PROBING


def test_a_database_that_stays_away_fails_the_call_after_the_budget(catalog_behind_proxy):
    catalog, proxy = catalog_behind_proxy
    catalog.reconnect_seconds = 2
    register(catalog, new_id(), "run-1")
    proxy.cut()
    started = time.monotonic()
    with pytest.raises(sa.exc.OperationalError):
        catalog.get_video(new_id())
    assert 1.0 <= time.monotonic() - started < 10


def test_a_query_error_is_not_retried(catalog_behind_proxy):
    catalog, _ = catalog_behind_proxy
    catalog.reconnect_seconds = 30
    started = time.monotonic()
    with pytest.raises(sa.exc.DBAPIError):
        catalog.plan_renditions("no-such-video", "run-1", 1, [  # violates the foreign key at once
            RenditionPlan("720p", 1280, 720, 3000, 128, 30.0)])
    assert time.monotonic() - started < 2
