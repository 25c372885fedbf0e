"""Which videos a ``reprocess_videos`` run re-transcodes, as ``transcode_video`` runs to start.

A run's data interval selects the videos whose source was uploaded in it, so a backfill over a date range
re-transcodes exactly that range. Scheduled and manual runs also pick up, a batch at a time, published videos
encoded with an older ladder than the current one. Each video gets a new version; the current one stays
readable until the new one is published.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from vodflow.catalog import Catalog, catalog_for_connection
from vodflow.ladder import LADDER_VERSION
from vodflow.layout import parse_source_uri
from vodflow.settings import Settings, load_settings

log = logging.getLogger(__name__)


def reprocess_run_id(video_id: str, run_id: str) -> str:
    """Deterministic per (video, reprocess run): re-running the same reprocess run starts nothing twice."""
    return f"reprocess__{video_id}__{run_id}"[:250]


def _run_for(video: dict[str, Any], run_id: str) -> dict[str, Any] | None:
    try:
        parse_source_uri(video["source_uri"])
    except ValueError:
        return None  # a request that was refused as invalid has no source to re-read
    conf: dict[str, Any] = {"source": video["source_uri"], "video_id": video["id"]}
    if video.get("title"):
        conf["title"] = video["title"]
    return {"trigger_run_id": reprocess_run_id(video["id"], run_id), "conf": conf}


def select_runs(start: datetime, end: datetime, run_id: str, *, include_outdated: bool,
                catalog: Catalog | None = None, settings: Settings | None = None) -> list[dict[str, Any]]:
    settings = settings or load_settings()
    catalog = catalog or catalog_for_connection(settings.catalog_conn_id)
    chosen = {v["id"]: v for v in catalog.videos_uploaded_between(start, end)}
    log.info("%d video(s) uploaded in [%s, %s)", len(chosen), start.isoformat(), end.isoformat())
    if include_outdated:
        outdated = catalog.outdated_videos(LADDER_VERSION, settings.reprocess_outdated_per_run)
        log.info("%d published video(s) on a ladder older than v%d", len(outdated), LADDER_VERSION)
        chosen.update((v["id"], v) for v in outdated)
    runs = [run for video in chosen.values() if (run := _run_for(video, run_id))]
    for run in runs:
        log.info("Reprocess %s from %s", run["conf"]["video_id"], run["conf"]["source"])
    return runs
