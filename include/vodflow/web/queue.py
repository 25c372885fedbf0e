"""Where a video is in line, when it will start and when it will be done: Airflow's runs and transcode items (which
only Airflow knows: a waiting item has no worker, a queued run no video row) with the catalog's durations and
progress, through the estimates of ``vodflow.eta``.

The line is the runs whose transcode items have not started, in the order the scheduler takes them: runs it has
started before runs still queued behind ``max_active_videos``, then by weight (priority), then by age. Airflow
breaks ties between equal weights by logical date, which manual runs lack, so within one priority the age order is
the intent rather than a guarantee. One snapshot serves every video of a request (and SSE polls), for ``TTL``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from vodflow import eta
from vodflow.catalog import ACTIVE_STATUSES, Catalog
from vodflow.catalog.schema import renditions, video_events, video_versions, videos
from vodflow.dag_ids import TRANSCODE_VIDEO
from vodflow.priority import NORMAL, TRANSCODE_POOL, parse_by_user, run_priority, weight
from vodflow.settings import load_settings
from vodflow.web.isotime import iso

log = logging.getLogger(__name__)
TTL = 2.0  # seconds a snapshot is reused
RATE_SAMPLE = 20  # recent finished runs the encode rate is measured on
UNKNOWN = {"queue_position": None, "expected_start": None, "eta": None}
NOT_STARTED = (None, "scheduled", "queued", "up_for_reschedule")
FINISHED = ("success", "failed", "skipped", "upstream_failed", "removed")


@dataclass(frozen=True)
class Snapshot:
    taken_at: datetime
    waiting: list[str]  # run ids, in the order the scheduler takes them
    encoding: dict[str, datetime]  # run id → when it started encoding (its first renditions, else its first item)
    slots: int
    durations: dict[str, float | None] = field(default_factory=dict)  # run id → its source's seconds (if probed)
    progress: dict[str, float] = field(default_factory=dict)  # encoding run id → its renditions' mean progress
    rate: eta.EncodeRate = eta.DEFAULT_RATE

    def fields(self, video: Mapping[str, Any], progress: float) -> dict[str, Any]:
        """The API's ``priority``, ``queue_position``, ``expected_start`` and ``eta`` for one catalog video."""
        out: dict[str, Any] = {"priority": video_priority(video), "queue_position": None, "expected_start": None,
                               "eta": None}
        run = video.get("dag_run_id")
        if video.get("status") not in ACTIVE_STATUSES or not run:
            return out
        if run in self.encoding:
            out["eta"] = iso(eta.encode_eta(progress, self.encoding[run], self.taken_at))
        elif run in self.waiting:
            place = self.waiting.index(run)
            out["queue_position"] = place + 1
            ahead = [self.rate.encode_seconds(self.durations.get(r)) for r in self.waiting[:place]]
            busy = [eta.encode_eta(self.progress.get(r, 0.0), start, self.taken_at)
                    for r, start in self.encoding.items()]
            out["expected_start"] = iso(eta.expected_start(self.taken_at, self.slots, busy, ahead,
                                                            self.rate.fallback_seconds))
        return out


def place(snap: Snapshot | None, video: Mapping[str, Any] | None) -> Any:
    """What changes a video's SSE snapshot besides the catalog: its place in line, or that it is encoding."""
    run = (video or {}).get("dag_run_id")
    if snap is None or not run:
        return None
    return "encoding" if run in snap.encoding else (snap.waiting.index(run) + 1 if run in snap.waiting else None)


def safe_snapshot(catalog: Catalog) -> Snapshot | None:
    """``snapshot``, or None when Airflow's database cannot be read: the API still answers, without the line."""
    try:
        return snapshot(catalog)
    except sa.exc.SQLAlchemyError:
        log.warning("queue: Airflow's database unavailable", exc_info=True)
        return None


def video_priority(video: Mapping[str, Any]) -> str:
    """The priority the video's latest run got (kept with its request by ``prepare``)."""
    try:
        return json.loads(video.get("request") or "{}").get("priority") or NORMAL
    except (ValueError, AttributeError):
        return NORMAL




_lock = threading.Lock()
_cached: tuple[float, Snapshot] | None = None


def snapshot(catalog: Catalog) -> Snapshot:
    """The line now (reused for ``TTL`` seconds: every video of a list, every SSE stream)."""
    global _cached
    with _lock:
        if _cached is None or time.monotonic() - _cached[0] > TTL:
            _cached = (time.monotonic(), take_snapshot(catalog))
        return _cached[1]


def take_snapshot(catalog: Catalog) -> Snapshot:
    from airflow.models.dagrun import DagRun
    from airflow.models.pool import Pool
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.utils.session import create_session

    now = datetime.now(UTC)
    by_user = parse_by_user(load_settings().priority_by_user)
    with create_session() as session:
        runs = session.execute(sa.select(DagRun.run_id, DagRun.state, DagRun.conf, DagRun.triggering_user_name,
                                         DagRun.queued_at, DagRun.run_after).where(
            DagRun.dag_id == TRANSCODE_VIDEO, DagRun.state.in_(("queued", "running")))).all()
        items: dict[str, list[Any]] = {}
        if runs:
            for ti in session.execute(sa.select(TI.run_id, TI.state, TI.start_date, TI.priority_weight).where(
                    TI.dag_id == TRANSCODE_VIDEO, TI.task_id == "transcode",
                    TI.run_id.in_([r.run_id for r in runs]))).all():
                items.setdefault(ti.run_id, []).append(ti)
        slots = session.scalar(sa.select(Pool.slots).where(Pool.pool == TRANSCODE_POOL))
        recent = _recent_encodes(session)
    waiting, encoding = [], {}
    for run in runs:
        tis = items.get(run.run_id, [])
        started = [t.start_date for t in tis if t.state not in NOT_STARTED and t.start_date]
        if not started:
            weight_now = max((t.priority_weight for t in tis), default=None) or weight(
                run_priority(run.conf if isinstance(run.conf, dict) else {}, run.triggering_user_name, by_user))
            age = run.run_after or run.queued_at or now
            waiting.append(((run.state == "queued", -weight_now, age), run.run_id))
        elif not all(t.state in FINISHED for t in tis):
            encoding[run.run_id] = min(started)
    order = [run_id for _, run_id in sorted(waiting)]
    encoding.update(_encode_starts(catalog, encoding))
    durations, progress = _catalog_facts(catalog, [*order, *encoding, *recent])
    rate = eta.measured_rate((durations.get(r) or 0.0, spent) for r, spent in recent.items())
    return Snapshot(now, order, encoding, slots if slots and slots > 0 else 1, durations,
                    {r: progress.get(r, 0.0) for r in encoding}, rate)


def _recent_encodes(session: Any) -> dict[str, float]:
    """Slot-seconds the transcode items of the last finished successful runs took, by run id."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance as TI

    last = (sa.select(DagRun.run_id).where(DagRun.dag_id == TRANSCODE_VIDEO, DagRun.state == "success")
            .order_by(DagRun.end_date.desc()).limit(RATE_SAMPLE)).subquery()
    rows = session.execute(sa.select(TI.run_id, sa.func.sum(TI.duration)).where(
        TI.dag_id == TRANSCODE_VIDEO, TI.task_id == "transcode", TI.state == "success",
        TI.run_id.in_(sa.select(last.c.run_id))).group_by(TI.run_id)).all()
    return {run_id: float(spent) for run_id, spent in rows if spent}


def _encode_starts(catalog: Catalog, first_items: dict[str, datetime]) -> dict[str, datetime]:
    """By run id: when its first renditions started encoding (the catalog's event), if after its first item
    started: the rate then leaves out the task's own start-up (seconds, which would make an early ETA late)."""
    found = {}
    with catalog.engine.connect() as conn:  # one query per encoding run: a few (the transcode slots)
        for run_id, first in first_items.items():
            at = conn.scalar(sa.select(sa.func.min(video_events.c.at))
                             .select_from(video_versions.join(video_events,
                                                              video_events.c.video_id == video_versions.c.video_id))
                             .where(video_versions.c.dag_run_id == run_id, video_events.c.kind == "rendition",
                                    video_events.c.at >= first))
            if at is not None:
                found[run_id] = at if at.tzinfo else at.replace(tzinfo=UTC)  # SQLite drops the zone
    return found


def _catalog_facts(catalog: Catalog, run_ids: list[str]) -> tuple[dict[str, float | None], dict[str, float]]:
    """By run id: the video's probed duration, and its renditions' mean progress in that run's version."""
    if not run_ids:
        return {}, {}
    with catalog.engine.connect() as conn:
        found = conn.execute(sa.select(video_versions.c.dag_run_id, videos.c.duration,
                                       sa.func.avg(renditions.c.progress))
                             .select_from(video_versions.join(videos, videos.c.id == video_versions.c.video_id)
                                          .outerjoin(renditions, sa.and_(
                                              renditions.c.video_id == video_versions.c.video_id,
                                              renditions.c.version == video_versions.c.version)))
                             .where(video_versions.c.dag_run_id.in_(run_ids))
                             .group_by(video_versions.c.dag_run_id, videos.c.duration)).all()
    return ({r: d for r, d, _ in found}, {r: float(p or 0.0) for r, _, p in found})
