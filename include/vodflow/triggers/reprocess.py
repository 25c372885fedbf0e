"""Which videos a ``reprocess_videos`` run re-transcodes, as ``transcode_video`` runs to start.

Each upload costs one encode unless someone asks for another, so the default mode, ``repair``, never selects a
``ready`` video of the range: only videos that never reached ``ready`` for a reason a retry can fix (a failure
that is not bad input, or a run that died: active but silent for longer than ``ACTIVE_RUN_STALE_AFTER``, which
``Catalog.register`` then lets the new run take over). Mode ``all`` re-transcodes every video of the range that
no run is building (a backfill asked for with ``{"mode": "all"}``). Runs other than backfills also re-encode, a
batch at a time, published videos on an older ladder. Every run starts from the video's stored request.

The range is the run's data interval; a manual run without a logical date has none: ``repair`` then sweeps
every retryable video up to now, and ``all`` is refused (it would re-encode the whole library by accident).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from vodflow.catalog import (
    ACTIVE_RUN_STALE_AFTER,
    ACTIVE_STATUSES,
    FAILED,
    Catalog,
    catalog_for_connection,
    now,
    renditions,
    upload_time,
    videos,
)
from vodflow.errors import BAD_INPUT_CODES, Refused
from vodflow.layout import parse_source_uri
from vodflow.media.encode.ladder import LADDER_VERSION
from vodflow.priority import LOW
from vodflow.request import rerun_request
from vodflow.settings import Settings, load_settings

log = logging.getLogger(__name__)
REPAIR, ALL = "repair", "all"
MODES = (REPAIR, ALL)
RUN_PREFIX = "reprocess__"


class RangeRequired(Refused, ValueError):
    """Mode ``all`` without a data interval: re-encoding every video ever uploaded is never a default."""


def reprocess_run_id(video_id: str, run_id: str) -> str:
    """Deterministic per (video, reprocess run): re-running the same reprocess run starts nothing twice."""
    return f"{RUN_PREFIX}{video_id}__{run_id}"[:250]


def retryable(at: datetime) -> sa.ColumnElement[bool]:
    """Never reached ``ready`` for a reason a retry can fix: failed but not on bad input, or its run died
    (active, and neither the video nor its renditions changed for ``ACTIVE_RUN_STALE_AFTER``)."""
    stale_before = at - ACTIVE_RUN_STALE_AFTER
    recent_progress = sa.exists().where(renditions.c.video_id == videos.c.id,
                                        renditions.c.version == videos.c.latest_version,
                                        renditions.c.updated_at >= stale_before)
    failed = sa.and_(videos.c.status == FAILED,
                     sa.or_(videos.c.error_code.is_(None), videos.c.error_code.not_in(sorted(BAD_INPUT_CODES))))
    died = sa.and_(videos.c.status.in_(ACTIVE_STATUSES), videos.c.updated_at < stale_before, ~recent_progress)
    return sa.or_(failed, died)


def repair_condition(start: datetime | None, end: datetime | None, at: datetime, *,
                     scheduled: bool) -> sa.ColumnElement[bool]:
    """Retryable videos uploaded in [start, end) (any time before ``at`` when there is no range).

    A scheduled run also looks back one interval, because a video uploaded just before midnight may still be
    running when its own interval's run looks (and a dead run is stale only hours later); and it leaves alone
    a video whose latest run was already a reprocess run, so the schedule retries a failure once, not daily.
    """
    conditions = [retryable(at)]
    if start is not None and end is not None:
        conditions += [upload_time >= (start - (end - start) if scheduled else start), upload_time < end]
    if scheduled:
        conditions.append(sa.not_(sa.func.coalesce(videos.c.dag_run_id, "").startswith(RUN_PREFIX,
                                                                                         autoescape=True)))
    return sa.and_(*conditions)


def _run_for(video: dict[str, Any], run_id: str, *, scheduled: bool) -> dict[str, Any] | None:
    """A scheduled run's repairs are background work: priority low, so uploads people wait for go first; a run
    someone started (or a backfill) keeps each video's own priority, like a retry."""
    try:
        parse_source_uri(video["source_uri"])
    except ValueError:
        return None  # a request that was refused as invalid has no source to re-read
    return {"trigger_run_id": reprocess_run_id(video["id"], run_id),
            "conf": rerun_request(video, {"priority": LOW} if scheduled else None)}


def select_runs(start: datetime | None, end: datetime | None, run_id: str, *, mode: str = REPAIR,
                scheduled: bool = False, include_outdated: bool = True, at: datetime | None = None,
                catalog: Catalog | None = None, settings: Settings | None = None) -> list[dict[str, Any]]:
    """The ``transcode_video`` runs (run id, conf) for a reprocess run over [start, end); None, None: no range."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if (start is None) != (end is None):
        raise ValueError("a range needs both its start and its end")
    settings = settings or load_settings()
    catalog = catalog or catalog_for_connection(settings.catalog_conn_id)
    at = at or now()
    if mode == ALL:
        if start is None or end is None:
            raise RangeRequired(
                "mode 'all' re-transcodes every video of a range, and this run has none (triggered without a "
                "logical date). Trigger it with a logical date (its day), or backfill the dates with "
                "--dag-run-conf '{\"mode\": \"all\"}'. Without a logical date, mode 'repair' retries what "
                "failed or died.")
        chosen = {v["id"]: v for v in catalog.videos_uploaded_between(start, end)}
        log.info("Mode all: %d video(s) uploaded in [%s, %s)", len(chosen), start.isoformat(), end.isoformat())
    else:
        found = catalog.video_rows(repair_condition(start, end, at, scheduled=scheduled), upload_time)
        chosen = {v["id"]: v for v in found}
        span = f"[{start.isoformat()}, {end.isoformat()})" if start and end else f"up to {at.isoformat()}"
        log.info("Mode repair: %d video(s) uploaded %s failed (not bad input) or died", len(chosen), span)
    if include_outdated:
        outdated = catalog.outdated_videos(LADDER_VERSION, settings.reprocess_outdated_per_run)
        log.info("%d published video(s) on a ladder older than v%d", len(outdated), LADDER_VERSION)
        chosen.update((v["id"], v) for v in outdated)
    runs = []
    for video in chosen.values():
        if (run := _run_for(video, run_id, scheduled=scheduled)) is not None:
            log.info("Reprocess %s (%s%s) from %s", video["id"], video["status"],
                     f", {video['error_code']}" if video["error_code"] else "", run["conf"]["source"])
            runs.append(run)
    return runs
