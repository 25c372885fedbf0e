"""What ``GET /vodflow/metrics`` reports, read from the catalog at scrape time.

The catalog is the one place every worker (on any machine) writes to, so the api-server can report the whole
pipeline without a metrics push or a shared multiprocess directory. Encode timings are the ``encoded`` events a
whole-video encode writes per rendition; deleting a video removes its events (Prometheus sees a counter reset).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from vodflow.catalog.counters import refusal_counts
from vodflow.catalog.schema import (
    ACTIVE_STATUSES,
    VERSION_PUBLISHED,
    VIDEO_STATUSES,
    aware,
    renditions,
    video_events,
    video_versions,
    videos,
)


@dataclass(frozen=True)
class Encode:
    rendition: str
    seconds: float
    realtime_factor: float | None
    bytes: int


@dataclass
class MetricsSnapshot:
    videos_by_status: dict[str, int]
    failures_by_code: dict[str, int]
    published_bytes: int
    encodes: list[Encode] = field(default_factory=list)
    oldest_unfinished: datetime | None = None
    refusals: dict[str, int] = field(default_factory=dict)  # requests refused by a rate limit or quota, by reason


def snapshot(engine: Engine) -> MetricsSnapshot:
    with engine.connect() as conn:
        by_status = dict.fromkeys(VIDEO_STATUSES, 0)
        by_status.update({r.status: int(r.n) for r in conn.execute(
            sa.select(videos.c.status, sa.func.count().label("n")).group_by(videos.c.status))})
        failures = {r.error_code: int(r.n) for r in conn.execute(
            sa.select(videos.c.error_code, sa.func.count().label("n")).where(videos.c.error_code.is_not(None))
            .group_by(videos.c.error_code))}
        published = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(renditions.c.bytes), 0)).select_from(
            renditions.join(video_versions, sa.and_(video_versions.c.video_id == renditions.c.video_id,
                                                    video_versions.c.version == renditions.c.version)))
            .where(video_versions.c.status == VERSION_PUBLISHED)).scalar()
        oldest = conn.execute(sa.select(sa.func.min(sa.func.coalesce(videos.c.started_at, videos.c.created_at)))
                              .where(videos.c.status.in_(ACTIVE_STATUSES))).scalar()
        encodes = []
        for (detail,) in conn.execute(sa.select(video_events.c.detail).where(video_events.c.kind == "encoded")):
            data = json.loads(detail or "{}")
            if data.get("seconds"):
                encodes.append(Encode(str(data.get("rendition")), float(data["seconds"]),
                                      data.get("realtime_factor"), int(data.get("bytes") or 0)))
    return MetricsSnapshot(by_status, failures, int(published or 0), encodes, aware(oldest) if oldest else None,
                           refusal_counts(engine))
