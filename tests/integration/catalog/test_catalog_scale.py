"""The catalog's operator queries keep to their indexes at scale (issue 25, 4b), on a real Postgres catalog seeded
with 20,000 videos (vodflow.devtools.catalog_seed: a year of uploads, 4 renditions and 8 events each): every query
the list (first and deep pages, a status, a search by word and by id, a run), one video, the stats and the metrics
run is captured and EXPLAINed, and none scans a big table whole. The million-video timings are bench/catalog_scale.py.
And the metrics' folded totals say what adding up every event would say, before and after a delete and a prune; the
counts by status kept by the triggers say what counting the videos says."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import create_test_database, drop_test_database
from vodflow.catalog import (
    READY,
    VERSION_DELETED,
    VIDEO_STATUSES,
    Catalog,
    make_engine,
    renditions,
    video_events,
    video_status_deltas,
    videos,
)
from vodflow.catalog import metrics as catalog_metrics
from vodflow.catalog.metrics import Encodes, snapshot, videos_by_status
from vodflow.catalog.queries import EXACT_TOTAL_UP_TO
from vodflow.devtools.catalog_seed import RARE_WORD, seed
from vodflow.web import queue

pytestmark = pytest.mark.integration
VIDEOS = 20_000
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
BIG_TABLE_SCAN = re.compile(r"Seq Scan on (videos|renditions|video_events|video_versions|version_outputs)\b")


@pytest.fixture(scope="module")
def seeded() -> Iterator[Catalog]:
    name = f"vodflow_scale_{uuid.uuid4().hex[:10]}"
    engine = make_engine(create_test_database(name))
    try:
        catalog = Catalog(engine)
        catalog.migrate()
        seed(engine, VIDEOS, log=lambda _line: None)
        snapshot(engine)  # the first scrape folds the seeded history (as revision 0009 does on an upgrade)
        yield catalog
    finally:
        engine.dispose()
        drop_test_database(name)


def newest(catalog: Catalog) -> Any:
    with catalog.engine.connect() as conn:
        return conn.execute(sa.select(videos.c.id, videos.c.dag_run_id, videos.c.latest_version)
                            .where(videos.c.status == READY).order_by(videos.c.created_at.desc()).limit(1)).first()


def plans_of(catalog: Catalog, call: Callable[[], Any]) -> list[tuple[str, str]]:
    """(statement, its plan) of every SELECT ``call`` runs on the catalog."""
    ran: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, many) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "pg_catalog" not in statement:
            ran.append((statement, parameters))

    sa.event.listen(catalog.engine, "before_cursor_execute", capture)
    try:
        call()
    finally:
        sa.event.remove(catalog.engine, "before_cursor_execute", capture)
    raw = catalog.engine.raw_connection()
    try:
        cursor = raw.cursor()
        found = []
        for statement, parameters in ran:
            cursor.execute("EXPLAIN " + statement, parameters)
            found.append((" ".join(statement.split())[:160], "\n".join(row[0] for row in cursor.fetchall())))
        raw.rollback()
        return found
    finally:
        raw.close()


CALLS: dict[str, Callable[[Catalog, Any], Any]] = {
    "list first page": lambda c, v: c.list_videos_page(),
    "list deep page": lambda c, v: c.list_videos_page(offset=VIDEOS // 2),
    "list deep page by keyset": lambda c, v: c.list_videos_page(after=c.list_videos_page(offset=VIDEOS // 2,
                                                                                         limit=1)[0][0]["id"]),
    "list failed": lambda c, v: c.list_videos_page(status="failed"),
    "list ready, page 3": lambda c, v: c.list_videos_page(status="ready", offset=100),
    "search a word": lambda c, v: c.list_videos_page(search="sunset"),
    "search a rare word": lambda c, v: c.list_videos_page(search=RARE_WORD),
    "search an id": lambda c, v: c.list_videos_page(search=v.id[:9]),
    "a run's video": lambda c, v: c.list_videos_page(run_id=v.dag_run_id),
    "one video": lambda c, v: (c.get_video(v.id), c.get_renditions(v.id, v.latest_version), c.get_versions(v.id),
                               c.get_outputs(v.id, v.latest_version), c.get_events(v.id), c.activity_marker(v.id)),
    "stats": lambda c, v: c.stats(datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)),
    "metrics": lambda c, v: snapshot(c.engine),
    "the queue's facts of runs": lambda c, v: (queue._catalog_facts(c, [v.dag_run_id]),
                                               queue._encode_starts(c, {v.dag_run_id: LONG_AGO})),
}


@pytest.mark.parametrize("what", list(CALLS))
def test_no_operator_query_scans_a_big_table(seeded, what):
    plans = plans_of(seeded, lambda: CALLS[what](seeded, newest(seeded)))
    assert plans, "nothing ran"
    scans = [(statement, plan) for statement, plan in plans if BIG_TABLE_SCAN.search(plan)]
    assert not scans, "\n\n".join(f"{s}\n{p}" for s, p in scans)


def test_totals_are_exact_but_a_large_search_says_it_is_an_estimate(seeded):
    found, total, estimated = seeded.list_videos_page()
    with seeded.engine.connect() as conn:
        counted = dict(conn.execute(sa.select(videos.c.status, sa.func.count()).group_by(videos.c.status)).all())
    assert (total, estimated) == (sum(counted.values()), False)  # the counts by status: exact, and no scan
    assert seeded.list_videos_page(status="failed")[1:] == (counted["failed"], False)
    assert len(found) == 50 and [v["created_at"] for v in found] == sorted((v["created_at"] for v in found),
                                                                           reverse=True)
    everything, many, estimated = seeded.list_videos_page(search="VID_")  # every id matches
    assert estimated and many > EXACT_TOTAL_UP_TO and abs(many - VIDEOS) < VIDEOS * 0.3, many
    assert everything == found
    rare, count, estimated = seeded.list_videos_page(search=RARE_WORD.upper())
    assert count == len(rare) == VIDEOS // 2000 and not estimated
    assert all(RARE_WORD in v["title"] for v in rare)


def test_keyset_pages_are_the_offset_pages(seeded):
    by_offset = [v["id"] for v in seeded.list_videos_page(status="ready", limit=30, offset=30)[0]]
    first = seeded.list_videos_page(status="ready", limit=30)[0]
    assert [v["id"] for v in seeded.list_videos_page(status="ready", limit=30, after=first[-1]["id"])[0]] == by_offset
    oldest = seeded.list_videos_page(offset=VIDEOS - 10)[0]
    assert len(oldest) == 10 and not seeded.list_videos_page(after=oldest[-1]["id"])[0]
    assert seeded.list_videos_page(after="vid_no_such_video")[0] == []


def every_event(catalog: Catalog) -> Encodes:
    added = Encodes()
    with catalog.engine.connect() as conn:
        added.add_events(conn.execute(sa.select(video_events.c.detail).where(video_events.c.kind == "encoded"))
                         .scalars())
    return added


def published_bytes(catalog: Catalog) -> int:
    with catalog.engine.connect() as conn:
        return int(conn.execute(sa.text(
            "SELECT coalesce(sum(r.bytes), 0) FROM renditions r JOIN video_versions v ON v.video_id = r.video_id "
            "AND v.version = r.version WHERE v.status = 'published'")).scalar())


def test_the_folded_metrics_say_what_adding_up_every_event_says(seeded):
    first = snapshot(seeded.engine)  # the seeded events are all older than FOLD_AFTER: folded
    expected = every_event(seeded)
    assert first.encodes.rows() == expected.rows()
    assert first.published_bytes == published_bytes(seeded) > 0
    video = newest(seeded)
    seeded.add_event(video.id, "encoded", rendition="720p", seconds=3.5, realtime_factor=2.0, bytes=1000)
    expected.add_events(['{"rendition": "720p", "seconds": 3.5, "realtime_factor": 2.0, "bytes": 1000}'])
    fresh = snapshot(seeded.engine)  # an event of now: added at scrape time, not folded yet
    assert fresh.encodes.rows() == expected.rows()
    assert fresh.encodes.histograms["encode_seconds"]["720p"].counts.get("5.0", 0) == \
        first.encodes.histograms["encode_seconds"]["720p"].counts.get("5.0", 0) + 1

    with seeded.engine.connect() as conn:
        other = conn.execute(sa.select(videos.c.id).where(videos.c.status == READY, videos.c.id != video.id)
                             .limit(1)).scalar()
        mine, others = (conn.execute(sa.select(sa.func.sum(renditions.c.bytes)).where(renditions.c.video_id == v)
                                     ).scalar() for v in (video.id, other))
    seeded.mark_version(other, 1, VERSION_DELETED)  # a prune
    seeded.mark_version(other, 1, VERSION_DELETED)  # twice: taken away once
    assert seeded.delete_video(video.id)
    after = snapshot(seeded.engine)
    assert after.published_bytes == published_bytes(seeded) == first.published_bytes - mine - others
    # The folded encodes stay (a counter does not go back); only the fresh event went with its video.
    assert after.encodes.rows() == first.encodes.rows()


def test_the_counts_by_status_follow_every_write_and_stay_a_few_rows(seeded, monkeypatch):
    monkeypatch.setattr(catalog_metrics, "COMPACT_AFTER", 3)

    def counted() -> dict[str, int]:
        with seeded.engine.connect() as conn:
            found = dict(conn.execute(sa.select(videos.c.status, sa.func.count()).group_by(videos.c.status)).all())
        return {status: found.get(status, 0) for status in VIDEO_STATUSES}

    assert videos_by_status(seeded.engine) == counted()
    video_id, run = f"vid_counts{uuid.uuid4().hex[:8]}", "run-counts"
    seeded.register(video_id=video_id, source_uri="s3://vodflow/uploads/counts.mp4", etag="e", size=1, title="t",
                    run_id=run, ladder_version=1)
    seeded.set_status(video_id, run, "probing")
    assert videos_by_status(seeded.engine) == counted()
    seeded.fail(video_id=video_id, run_id=run, version=1, code="source_unreadable", message="no")
    with seeded.engine.begin() as conn:  # one statement moving several videos, and one that moves none
        conn.execute(videos.update().where(videos.c.id.in_(
            sa.select(videos.c.id).where(videos.c.status == READY).limit(7).scalar_subquery())).values(status="failed"))
        conn.execute(videos.update().where(videos.c.status == "failed").values(title="same status"))
    assert seeded.delete_video(video_id)
    assert videos_by_status(seeded.engine) == counted()
    with seeded.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(video_status_deltas)).scalar() <= len(
            VIDEO_STATUSES)  # compacted: a row per status


def test_paging_by_keyset_and_the_stats_on_both_databases(catalog):
    """The embedded demo's SQLite pages, counts and adds up the day as Postgres does."""
    tag = uuid.uuid4().hex[:8]
    ids = [f"vid_page{tag}{i}" for i in range(5)]
    for i, video_id in enumerate(ids):
        catalog.register(video_id=video_id, source_uri=f"s3://vodflow/uploads/{video_id}.mp4", etag="e", size=1,
                         title=f"paging {tag}", run_id=f"run-{video_id}", ladder_version=1)
        if i % 2:
            catalog.fail(video_id=video_id, run_id=f"run-{video_id}", version=1, code="source_unreadable", message="x")
    found, total, estimated = catalog.list_videos_page(search=tag, limit=2)
    assert ([v["id"] for v in found], total, estimated) == ([ids[4], ids[3]], 5, False)
    after = catalog.list_videos_page(search=tag, limit=2, after=found[-1]["id"])[0]
    assert [v["id"] for v in after] == [ids[2], ids[1]] == [v["id"] for v in catalog.list_videos(
        search=tag, limit=2, offset=2)[0]]
    stats = catalog.stats(datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0))
    assert stats["failed_today"] >= 2 and stats["by_status"]["queued"] >= 3
    assert stats["by_status"] == videos_by_status(catalog.engine)
