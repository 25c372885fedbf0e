"""Reprocessing against a real catalog (Postgres, and SQLite as in the demo): the kept request (migration 3),
which videos a reprocess run selects in each mode, and what a week of daily runs costs."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import create_test_database, drop_test_database
from tests.integration.catalog.test_catalog_migrations import build_release_catalog
from vodflow import errors, layout, pipeline
from vodflow.catalog import (
    ACTIVE_RUN_STALE_AFTER,
    SCHEMA_VERSION,
    Catalog,
    RenditionPlan,
    make_engine,
    renditions,
    videos,
)
from vodflow.media.encode.ladder import LADDER_VERSION
from vodflow.request import rerun_request
from vodflow.settings import Settings
from vodflow.triggers.reprocess import ALL, RangeRequired, reprocess_run_id, select_runs

pytestmark = pytest.mark.integration
DAY = datetime(2026, 11, 1, tzinfo=UTC)  # the interval [DAY, DAY + 1 day) of the scheduled run for 2026-11-01
SETTINGS = Settings(reprocess_outdated_per_run=10)


@pytest.fixture(params=["postgres", "sqlite"])
def empty_url(request, tmp_path) -> Iterator[str]:
    """A database of the test's own (selection looks at the whole catalog, so nothing else may be in it)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    name = f"vodflow_rep_{uuid.uuid4().hex[:10]}"
    url = create_test_database(name)
    try:
        yield url
    finally:
        drop_test_database(name)


@pytest.fixture
def catalog(empty_url) -> Iterator[Catalog]:
    catalog = Catalog(make_engine(empty_url))
    catalog.migrate()
    yield catalog
    catalog.engine.dispose()


def source_of(video_id: str) -> str:
    return f"s3://vodflow/uploads/{video_id}.mp4"


def add(catalog: Catalog, video_id: str, uploaded: datetime, outcome: str, *, code: str | None = None,
        run_id: str | None = None, request: dict[str, Any] | None = None, ladder_version: int = LADDER_VERSION,
        idle: timedelta = timedelta(0), progress_idle: timedelta | None = None) -> dict[str, Any]:
    """A video whose run (``run_id``) registered it with ``request`` and then became ``outcome``: ready
    (published), failed (``code``), rebuild_failed (ready on v1, v2 failed), queued or active (transcoding): the
    video row silent for ``idle`` and its rendition for ``progress_idle`` (default: as long)."""
    run_id = run_id or f"upload__{video_id}"
    request = request or {"source": source_of(video_id), "video_id": video_id}
    version = encode(catalog, video_id, run_id, request, uploaded)
    if outcome in ("ready", "rebuild_failed"):
        catalog.publish(video_id=video_id, run_id=run_id, version=version, master_uri=f"{source_of(video_id)}.m3u8",
                        poster_uri=None, ladder_version=ladder_version)
    if outcome == "rebuild_failed":
        version = encode(catalog, video_id, f"{run_id}-again", request, uploaded)
        assert catalog.fail(video_id=video_id, run_id=f"{run_id}-again", version=version,
                            code=errors.INTERNAL_ERROR, message="boom")
    elif outcome == "failed":
        assert catalog.fail(video_id=video_id, run_id=run_id, version=version, code=code, message="boom")
    elif outcome in ("active", "queued"):  # queued: the run never got as far as planning renditions
        if outcome == "active":
            catalog.plan_renditions(video_id, run_id, version, [RenditionPlan("360p", 640, 360, 800, 96, 30.0)])
        now = datetime.now(UTC)
        with catalog.engine.begin() as conn:
            conn.execute(videos.update().where(videos.c.id == video_id).values(updated_at=now - idle))
            conn.execute(renditions.update().where(renditions.c.video_id == video_id).values(
                updated_at=now - (idle if progress_idle is None else progress_idle)))
    return catalog.get_video(video_id)


def encode(catalog: Catalog, video_id: str, run_id: str, conf: dict[str, Any], uploaded: datetime) -> int:
    """What a transcode_video run's register does with its conf (the encode itself is not the point here)."""
    return catalog.register(video_id=video_id, source_uri=conf["source"], etag="e1", size=100,
                            title=conf.get("title"), run_id=run_id, ladder_version=LADDER_VERSION,
                            uploaded_at=uploaded, request=conf)


def chosen(runs: list[dict[str, Any]]) -> set[str]:
    return {run["conf"]["video_id"] for run in runs}


def test_migration_3_upgrades_a_version_2_catalog_and_keeps_its_rows(empty_url):
    engine = make_engine(empty_url)
    build_release_catalog(engine, 2)  # a catalog as release 2 left it (no request column), with a video in it
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO videos (id, source_uri, title, status, latest_version, created_at, updated_at) "
            "VALUES ('old', 's3://vodflow/uploads/old.mp4', 'Old one', 'failed', 1, :t, :t)"), {"t": DAY})
    catalog = Catalog(engine)
    assert catalog.schema_version() == 2
    assert "request" not in {c["name"] for c in sa.inspect(engine).get_columns("videos")}
    assert catalog.migrate() == SCHEMA_VERSION >= 3
    assert catalog.migrate() == SCHEMA_VERSION  # idempotent
    old = catalog.get_video("old")
    assert (old["title"], old["status"], old["request"]) == ("Old one", "failed", None)
    # A row from before the request was kept is re-run from what the catalog knows about it.
    assert rerun_request(old) == {"source": "s3://vodflow/uploads/old.mp4", "title": "Old one", "video_id": "old"}
    request = {"source": "s3://vodflow/uploads/old.mp4", "video_id": "old", "ladder": ["720p", "360p"]}
    encode(catalog, "old", "retry__old", request, DAY)
    assert json.loads(catalog.get_video("old")["request"]) == request
    engine.dispose()


def test_a_new_catalog_keeps_the_latest_runs_request(catalog):
    assert catalog.schema_version() == SCHEMA_VERSION >= 3
    first = {"source": source_of("v"), "video_id": "v", "ladder": ["720p", "360p"], "adaptive": True,
             "chunk_seconds": 12, "callback_url": "https://example.com/hook", "title": "Été ✓"}
    encode(catalog, "v", "upload__v", first, DAY)
    assert json.loads(catalog.get_video("v")["request"]) == first
    assert rerun_request(catalog.get_video("v")) == first
    version = encode(catalog, "v", "upload__v", {**first, "ladder": "full"}, DAY)  # the same run again: as it was
    assert json.loads(catalog.get_video("v")["request"]) == first
    catalog.fail(video_id="v", run_id="upload__v", version=version, code=errors.INTERNAL_ERROR, message="boom")
    second = {"source": source_of("v"), "video_id": "v", "ladder": "mobile"}
    encode(catalog, "v", "retry__v", second, DAY)  # a later run replaces it with its own
    assert json.loads(catalog.get_video("v")["request"]) == second


def test_a_scheduled_run_repairs_and_upgrades_but_never_re_encodes_a_good_video(catalog):
    at = DAY + timedelta(hours=10)
    kept = {"source": source_of("internal"), "video_id": "internal", "ladder": ["720p", "360p"], "adaptive": True,
            "title": "Keep me"}
    add(catalog, "ready", at, "ready")
    add(catalog, "rebuild-failed", at, "rebuild_failed")  # ready on v1, its rebuild failed: still a good video
    add(catalog, "internal", at, "failed", code=errors.INTERNAL_ERROR, request=kept)
    add(catalog, "unreadable", at, "failed", code=errors.UNREADABLE)
    add(catalog, "too-short", at, "failed", code=errors.TOO_SHORT)
    add(catalog, "stuck", at, "active", idle=ACTIVE_RUN_STALE_AFTER + timedelta(minutes=1),
        request={"source": source_of("stuck"), "video_id": "stuck", "chunk_seconds": 0})
    add(catalog, "busy", at, "active", idle=timedelta(minutes=10))  # a run still working on it
    add(catalog, "starting", at, "queued", idle=timedelta(minutes=10))
    add(catalog, "died-starting", at, "queued", idle=ACTIVE_RUN_STALE_AFTER + timedelta(minutes=1))
    add(catalog, "outdated", DAY - timedelta(days=300), "ready", ladder_version=LADDER_VERSION - 1,
        request={"source": source_of("outdated"), "video_id": "outdated", "callback_url": "https://e.com/h"})
    add(catalog, "internal-long-ago", DAY - timedelta(days=20), "failed", code=errors.INTERNAL_ERROR)
    # The video row has been silent for hours, but its rendition's progress moved a minute ago: alive.
    add(catalog, "encoding", at, "active", idle=ACTIVE_RUN_STALE_AFTER * 2, progress_idle=timedelta(minutes=1))

    run_id = "scheduled__2026-11-01T00:00:00+00:00"
    runs = select_runs(DAY, DAY + timedelta(days=1), run_id, scheduled=True, catalog=catalog, settings=SETTINGS)
    assert chosen(runs) == {"internal", "stuck", "died-starting", "outdated"}
    by_id = {run["conf"]["video_id"]: run for run in runs}
    # the non-default ladder, adaptive and title come back; a scheduled repair is background work: low priority
    assert by_id["internal"]["conf"] == {**kept, "priority": "low"}
    assert by_id["stuck"]["conf"] == {"source": source_of("stuck"), "video_id": "stuck", "chunk_seconds": 0,
                                      "priority": "low"}
    assert by_id["outdated"]["conf"]["callback_url"] == "https://e.com/h"
    for video_id, run in by_id.items():
        assert run["conf"] == rerun_request(catalog.get_video(video_id), {"priority": "low"})
        assert run["trigger_run_id"] == reprocess_run_id(video_id, run_id)
    # The same reprocess run again selects the same runs under the same ids: nothing starts twice.
    assert select_runs(DAY, DAY + timedelta(days=1), run_id, scheduled=True, catalog=catalog,
                       settings=SETTINGS) == runs

    # Mode all (a backfill asked for it): every video of the range no run is building, nothing else.
    everything = select_runs(DAY, DAY + timedelta(days=1), "backfill__2026-11-01T00:00:00+00:00", mode=ALL,
                             include_outdated=False, catalog=catalog, settings=SETTINGS)
    assert chosen(everything) == {"ready", "rebuild-failed", "internal", "unreadable", "too-short"}
    assert {r["conf"]["video_id"]: r["conf"] for r in everything}["internal"] == kept

    # A manual run without a logical date: no range, every retryable video up to now (and older ladders).
    sweep = select_runs(None, None, "manual__2026-11-30", catalog=catalog, settings=SETTINGS)
    assert chosen(sweep) == {"internal", "stuck", "died-starting", "outdated", "internal-long-ago"}
    with pytest.raises(RangeRequired, match="logical date"):
        select_runs(None, None, "manual__2026-11-30", mode=ALL, catalog=catalog, settings=SETTINGS)


def test_the_schedule_catches_a_failure_after_midnight_once(catalog):
    """A video uploaded just before midnight whose run fails after its interval's run looked is caught by the
    next night's run; a failure of a reprocess run is left for a person (a manual run still takes it)."""
    late = add(catalog, "late", DAY - timedelta(minutes=5), "failed", code=errors.INTERNAL_ERROR)
    repeat = add(catalog, "repeat", DAY + timedelta(hours=3), "failed", code=errors.INTERNAL_ERROR,
                 run_id=reprocess_run_id("repeat", "scheduled__2026-10-31"))
    assert late["status"] == repeat["status"] == "failed"
    scheduled = select_runs(DAY, DAY + timedelta(days=1), "scheduled__2026-11-01", scheduled=True,
                            catalog=catalog, settings=SETTINGS)
    assert chosen(scheduled) == {"late"}
    exact = select_runs(DAY, DAY + timedelta(days=1), "manual__2026-11-02", catalog=catalog, settings=SETTINGS)
    assert chosen(exact) == {"repeat"}  # a person's run over the day: exactly the day, retried or not


def test_a_week_of_daily_runs_encodes_each_upload_once(catalog):
    """Seven days of uploads, every one published, a scheduled run each night: no re-encode at all. One upload
    fails with an internal error on Wednesday: it is retried once, by Wednesday's run, whatever happens next."""
    encodes: list[str] = []
    for day in range(7):
        start = DAY + timedelta(days=day)
        for n in range(3):
            video_id = f"d{day}-{n}"
            failing = (day, n) == (2, 1)
            add(catalog, video_id, start + timedelta(hours=8 * n + 1), "failed" if failing else "ready",
                code=errors.INTERNAL_ERROR if failing else None)
            encodes.append(video_id)
        run_id = f"scheduled__{start.date()}"
        for run in select_runs(start, start + timedelta(days=1), run_id, scheduled=True, catalog=catalog,
                               settings=SETTINGS):
            video_id = run["conf"]["video_id"]
            version = encode(catalog, video_id, run["trigger_run_id"], run["conf"], start)
            encodes.append(video_id)
            catalog.fail(video_id=video_id, run_id=run["trigger_run_id"], version=version,
                         code=errors.INTERNAL_ERROR, message="still broken")  # the worst case: it fails again
    assert len(encodes) == 7 * 3 + 1 and encodes.count("d2-1") == 2
    for day in range(7):
        for n in range(3):
            assert catalog.get_video(f"d{day}-{n}")["latest_version"] == (2 if (day, n) == (2, 1) else 1)


@pytest.fixture
def ctx(airflow_env) -> pipeline.Services:
    return pipeline.Services.load()


def test_register_keeps_the_runs_own_request(ctx, media):
    key = f"uploads/{uuid.uuid4().hex[:6]}/kept.mp4"
    ctx.storage.client.upload_file(str(media["small"]), "vodflow", key)
    # Params as Airflow hands them over: every declared param (nulls for those not given). An unknown conf key is
    # refused before register keeps anything (tests/integration/pipeline/test_outputs.py).
    params = {"source": f"s3://vodflow/{key}", "video_id": None, "title": None, "ladder": ["720p", "360p"],
              "adaptive": True, "chunk_seconds": None, "callback_url": None}
    job = pipeline.register(params, "upload__kept", ctx)
    video_id = job.video_id
    assert video_id == layout.derive_video_id("vodflow", key, job.etag)
    stored = json.loads(ctx.catalog.get_video(video_id)["request"])
    assert stored == {"source": f"s3://vodflow/{key}", "video_id": video_id, "ladder": ["720p", "360p"],
                      "adaptive": True}
    ctx.catalog.fail(video_id=video_id, run_id="upload__kept", version=job.version, code=errors.INTERNAL_ERROR,
                     message="the worker died")
    retry = rerun_request(ctx.catalog.get_video(video_id), {"ladder": "mobile", "title": "New"})
    assert retry == {**stored, "ladder": "mobile", "title": "New"}
    pipeline.register(retry, "retry__kept", ctx)  # the retry's own conf is what is kept from now on
    assert json.loads(ctx.catalog.get_video(video_id)["request"]) == retry
