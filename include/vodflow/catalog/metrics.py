"""What ``GET /vodflow/metrics`` reports, read from the catalog at scrape time.

The catalog is the one place every worker (on any machine) writes to, so the api-server can report the whole
pipeline without a metrics push or a shared multiprocess directory. Encode timings are the ``encoded`` events a
whole-video encode writes per rendition. A scrape must not add up all of history (a million videos: four million
events): events older than ``FOLD_AFTER`` are folded once into ``metric_totals`` (cumulative histogram buckets, sums,
bytes, and ``encoded_through``, the last event id folded), and a scrape adds only the events after that. The fold
is kept when a video is deleted, as a counter should be. ``published_bytes`` is kept in ``metric_totals`` by publish,
prune and delete (``add_published_bytes``), last in their transactions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from vodflow.catalog.counters import refusal_counts
from vodflow.catalog.schema import (
    ACTIVE_STATUSES,
    VIDEO_STATUSES,
    aware,
    metric_totals,
    now,
    renditions,
    video_events,
    video_status_deltas,
    videos,
)

ENCODE_SECONDS_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
REALTIME_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32)
# Events older than this are folded: no transaction that wrote an event is still open by then, so none with a lower
# id can appear after the fold (ids are handed out at insert, rows become visible at commit).
FOLD_AFTER = timedelta(minutes=5)
SERIES = {"encode_seconds": ENCODE_SECONDS_BUCKETS, "encode_realtime_factor": REALTIME_BUCKETS}


@dataclass
class Histogram:
    """Cumulative counts per bucket bound (``le``, as Prometheus writes it), the count and the sum."""

    buckets: tuple[float, ...]
    counts: dict[str, float] = field(default_factory=dict)
    total: float = 0.0

    def add(self, value: float, times: float = 1) -> None:
        for bound in self.buckets:
            if value <= bound:
                self.counts[str(float(bound))] = self.counts.get(str(float(bound)), 0) + times
        self.counts["+Inf"] = self.counts.get("+Inf", 0) + times
        self.total += value * times

    def cumulative(self) -> list[tuple[str, float]]:
        return [*((str(float(b)), self.counts.get(str(float(b)), 0)) for b in self.buckets),
                ("+Inf", self.counts.get("+Inf", 0))]


@dataclass
class Encodes:
    """The encode histograms by series (``SERIES``) and rendition, and the bytes encoded."""

    histograms: dict[str, dict[str, Histogram]] = field(default_factory=lambda: {name: {} for name in SERIES})
    bytes: int = 0

    def histogram(self, series: str, rendition: str) -> Histogram:
        return self.histograms[series].setdefault(rendition, Histogram(SERIES[series]))

    def add_events(self, details: Iterable[str | None]) -> None:
        for detail in details:
            data = json.loads(detail or "{}")
            if not data.get("seconds"):
                continue
            rendition = str(data.get("rendition"))
            self.bytes += int(data.get("bytes") or 0)
            self.histogram("encode_seconds", rendition).add(float(data["seconds"]))
            if data.get("realtime_factor"):
                self.histogram("encode_realtime_factor", rendition).add(float(data["realtime_factor"]))

    def rows(self) -> dict[tuple[str, str, str], float]:
        """As ``metric_totals`` rows (name, label, le → value)."""
        found: dict[tuple[str, str, str], float] = {("encoded_bytes", "", ""): float(self.bytes)}
        for series, by_rendition in self.histograms.items():
            for rendition, h in by_rendition.items():
                found[(f"{series}_sum", rendition, "")] = h.total
                found.update({(series, rendition, le): n for le, n in h.counts.items()})
        return found


@dataclass
class MetricsSnapshot:
    videos_by_status: dict[str, int]
    failures_by_code: dict[str, int]
    published_bytes: int
    encodes: Encodes = field(default_factory=Encodes)
    oldest_unfinished: datetime | None = None
    refusals: dict[str, int] = field(default_factory=dict)  # requests refused by a rate limit or quota, by reason


def _totals(conn: Connection) -> dict[tuple[str, str, str], float]:
    return {(r.name, r.label, r.le): float(r.value) for r in conn.execute(sa.select(metric_totals))}


def _add_totals(conn: Connection, rows: dict[tuple[str, str, str], float]) -> None:
    for (name, label, le), amount in rows.items():
        where = sa.and_(metric_totals.c.name == name, metric_totals.c.label == label, metric_totals.c.le == le)
        if not conn.execute(metric_totals.update().where(where).values(value=metric_totals.c.value + amount)
                            ).rowcount:
            conn.execute(metric_totals.insert().values(name=name, label=label, le=le, value=amount))


# More rows than this in video_status_deltas: the reader folds them into one per status.
COMPACT_AFTER = 1000


def videos_by_status(engine: Engine) -> dict[str, int]:
    """Videos by status: on Postgres the sums of ``video_status_deltas`` (compacted when long), else a count."""
    counts = dict.fromkeys(VIDEO_STATUSES, 0)
    with engine.connect() as conn:
        if conn.dialect.name != "postgresql":
            counts.update({r.status: int(r.n) for r in conn.execute(
                sa.select(videos.c.status, sa.func.count().label("n")).group_by(videos.c.status))})
            return counts
        rows = conn.execute(sa.select(video_status_deltas.c.status, sa.func.sum(video_status_deltas.c.n).label("n"),
                                      sa.func.count().label("rows")).group_by(video_status_deltas.c.status)).all()
    counts.update({r.status: int(r.n) for r in rows if r.n})
    if sum(r.rows for r in rows) > COMPACT_AFTER:
        with engine.begin() as conn:  # rows appended meanwhile are not in the delete's snapshot: they stay
            conn.exec_driver_sql(
                "WITH gone AS (DELETE FROM video_status_deltas RETURNING status, n) "
                "INSERT INTO video_status_deltas (status, n) SELECT status, sum(n) FROM gone GROUP BY status")
    return counts


def version_bytes(conn: Connection, video_id: str, version: int) -> int:
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(renditions.c.bytes), 0)).where(
        renditions.c.video_id == video_id, renditions.c.version == version)).scalar() or 0)


def add_published_bytes(conn: Connection, amount: int) -> None:
    """A version was published (``amount`` > 0), pruned or deleted. Called last in its transaction: the row is
    everyone's, so it is locked for as short a time as can be, and always after the video's own rows (no cycle)."""
    if amount:
        _add_totals(conn, {("published_bytes", "", ""): float(amount)})


def fold_encodes(engine: Engine) -> None:
    """Fold the ``encoded`` events older than FOLD_AFTER into ``metric_totals``; one scrape folds, a concurrent one
    (another api-server process) finds ``encoded_through`` moved and leaves it to that one."""
    with engine.begin() as conn:
        through = int(_totals(conn).get(("encoded_through", "", ""), 0))
        upto = conn.execute(sa.select(sa.func.max(video_events.c.id)).where(
            video_events.c.id > through, video_events.c.at < now() - FOLD_AFTER)).scalar()
        if not upto:
            return
        moved = conn.execute(metric_totals.update().where(
            metric_totals.c.name == "encoded_through", metric_totals.c.value == through).values(value=upto)).rowcount
        if not moved:
            return
        folded = Encodes()
        folded.add_events(conn.execute(sa.select(video_events.c.detail).where(
            video_events.c.id > through, video_events.c.id <= upto, video_events.c.kind == "encoded")).scalars())
        _add_totals(conn, folded.rows())


def snapshot(engine: Engine) -> MetricsSnapshot:
    fold_encodes(engine)
    by_status = videos_by_status(engine)
    with engine.connect() as conn:
        failures = {r.error_code: int(r.n) for r in conn.execute(
            sa.select(videos.c.error_code, sa.func.count().label("n")).where(videos.c.error_code.is_not(None))
            .group_by(videos.c.error_code))}
        oldest = conn.execute(sa.select(sa.func.min(sa.func.coalesce(videos.c.started_at, videos.c.created_at)))
                              .where(videos.c.status.in_(ACTIVE_STATUSES))).scalar()
        totals = _totals(conn)
        encodes = Encodes(bytes=int(totals.get(("encoded_bytes", "", ""), 0)))
        for (name, label, le), value in totals.items():
            series = name.removesuffix("_sum")
            if series in SERIES:
                h = encodes.histogram(series, label)
                if name.endswith("_sum"):
                    h.total += value
                else:
                    h.counts[le] = value
        through = int(totals.get(("encoded_through", "", ""), 0))
        encodes.add_events(conn.execute(sa.select(video_events.c.detail).where(
            video_events.c.id > through, video_events.c.kind == "encoded")).scalars())
    return MetricsSnapshot(by_status, failures, int(totals.get(("published_bytes", "", ""), 0)), encodes,
                           aware(oldest) if oldest else None, refusal_counts(engine))
