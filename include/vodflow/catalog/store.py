"""Writes from the pipeline. Each run of a video builds a new version; ``publish`` switches ``current_version``
in one transaction, so readers only see complete versions. Updates from a run that is no longer the video's
latest are ignored, so a stale run cannot overwrite a newer one."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from vodflow.catalog import migrations
from vodflow.catalog.connection import RECONNECT_SECONDS, dialect_insert, reconnecting
from vodflow.catalog.early import drop_early
from vodflow.catalog.metrics import add_published_bytes, version_bytes
from vodflow.catalog.records import (
    AlreadyActive,
    AlreadyEncoded,
    BeingDeleted,
    OtherSource,
    RenditionPlan,
    Superseded,
    VariantRecord,
)
from vodflow.catalog.schema import (
    ACTIVE_RUN_STALE_AFTER,
    ACTIVE_STATUSES,
    DELETING,
    DONE,
    FAILED,
    PENDING,
    QUEUED,
    READY,
    RUNNING,
    SCHEMA_VERSION,
    TRANSCODING,
    VERSION_BUILDING,
    VERSION_FAILED,
    VERSION_PUBLISHED,
    aware,
    now,
    renditions,
    version_outputs,
    video_events,
    video_versions,
    videos,
)
from vodflow.media.source.info import SourceInfo
from vodflow.redact import redact_text

log = logging.getLogger(__name__)


class PipelineWrites:
    """What the pipeline writes: a run claims a video and a version, reports progress, publishes or fails."""

    def __init__(self, engine: Engine, reconnect_seconds: float = RECONNECT_SECONDS) -> None:
        self.engine = engine
        self.reconnect_seconds = reconnect_seconds  # 0: fail at once (e.g. an HTTP request answering 503)

    # Schema ------------------------------------------------------------------------------------------------
    @reconnecting
    def schema_version(self) -> int:
        """The database's schema version: its Alembic revision's number (a catalog from before Alembic: its
        ``vodflow_schema_version``); 0 for an empty database."""
        with self.engine.connect() as conn:
            return migrations.current_version(conn)

    @reconnecting
    def migrate(self) -> int:
        """Apply pending migrations (Alembic; a pre-Alembic catalog is stamped first); safe to call from many
        processes at once."""
        with self.engine.connect() as conn:  # a catalog from before Alembic counts as behind: it gets stamped
            current = migrations.current_version(conn, before_alembic=False)
        if current < SCHEMA_VERSION:
            migrations.upgrade(self.engine)
        return SCHEMA_VERSION

    # Helpers -----------------------------------------------------------------------------------------------
    @staticmethod
    def _event(conn: Connection, video_id: str, kind: str, **detail: Any) -> None:
        conn.execute(video_events.insert().values(
            video_id=video_id, at=now(), kind=kind, detail=json.dumps(detail, default=str) if detail else None))

    @staticmethod
    def _owned(video_id: str, run_id: str) -> sa.ColumnElement[bool]:
        return sa.and_(videos.c.id == video_id, videos.c.dag_run_id == run_id)

    def _set_status(self, conn: Connection, video_id: str, run_id: str, status: str, **values: Any) -> bool:
        """A step of the run's way to ``publishing``: only while the run owns the video and it is still active.
        A finished video (``ready``, ``failed``) or one being deleted is never moved back by a late or retried
        step (e.g. a retry of ``publish`` after its switch must not set ``publishing`` again); False then."""
        if status not in ACTIVE_STATUSES:
            raise ValueError(f"{status!r} is reached by publish, fail or delete, not set directly")
        result = conn.execute(videos.update().where(
            self._owned(video_id, run_id), videos.c.status.in_(ACTIVE_STATUSES),
        ).values(status=status, updated_at=now(), **values))
        if result.rowcount:
            self._event(conn, video_id, "status", status=status)
        return bool(result.rowcount)

    # Writes from the pipeline ------------------------------------------------------------------------------
    @reconnecting
    def register(self, *, video_id: str, source_uri: str, etag: str, size: int, title: str | None,
                 run_id: str, ladder_version: int, uploaded_at: datetime | None = None,
                 request: dict[str, Any] | None = None, once_per_object: bool = False) -> int:
        """Create or claim the video for this run and allocate the version it builds. Idempotent per run.

        ``request`` (the run's validated conf) replaces the stored one: the latest run's request is what a
        retry or reprocess run starts from. ``once_per_object`` (a watcher's run): stand down when another run
        has already registered the video from this very object (same URI and ETag), whatever came of it.
        An existing video is only ever re-run from its own source: another ``source_uri`` raises OtherSource
        and changes nothing (the row is locked, so no other run can change the source in between)."""
        with self.engine.begin() as conn:
            existing = conn.execute(
                sa.select(video_versions.c.version).where(
                    video_versions.c.video_id == video_id, video_versions.c.dag_run_id == run_id)
            ).scalar()
            if existing is not None:
                return int(existing)
            stamp = now()
            # Insert-if-absent first: of two runs registering a new video at once, one creates the row and the
            # other waits for it and then sees an active video, instead of failing on the primary key.
            insert = dialect_insert(conn)
            created = conn.execute(insert(videos).values(
                id=video_id, source_uri=source_uri, source_etag=etag, source_size=size, title=title,
                status=QUEUED, latest_version=0, created_at=stamp, updated_at=stamp,
            ).on_conflict_do_nothing(index_elements=["id"]).returning(videos.c.id)).first() is not None
            row = conn.execute(
                sa.select(videos.c.latest_version, videos.c.status, videos.c.dag_run_id, videos.c.updated_at,
                          videos.c.source_uri, videos.c.source_etag)
                .where(videos.c.id == video_id).with_for_update()
            ).first()
            if created:
                latest = 0
            else:
                # Gone between the insert and the lock: a delete finished its rows just now; as while it runs.
                if row is None or row.status == DELETING:  # registering now would resurrect a husk
                    raise BeingDeleted(video_id)
                if row.source_uri != source_uri:  # another upload under this id would take the video over
                    raise OtherSource(video_id)
                if once_per_object and row.latest_version and (row.source_uri, row.source_etag) == (source_uri, etag):
                    raise AlreadyEncoded(video_id, row.dag_run_id)
                if row.status in ACTIVE_STATUSES and row.dag_run_id != run_id:
                    idle = stamp - self._last_activity(conn, video_id, row)
                    if idle < ACTIVE_RUN_STALE_AFTER:
                        raise AlreadyActive(video_id, row.dag_run_id)
                    # The other run has written nothing for hours: it died without its teardown. Take over;
                    # versions keep the switch monotonic even if it wakes up.
                    self._event(conn, video_id, "takeover", previous_run_id=row.dag_run_id, run_id=run_id,
                                idle_seconds=int(idle.total_seconds()))
                latest = int(row.latest_version)
            version = latest + 1
            values: dict[str, Any] = dict(
                latest_version=version, status=QUEUED, dag_run_id=run_id, error_code=None, error_message=None,
                source_uri=source_uri, source_etag=etag, source_size=size, source_uploaded_at=uploaded_at,
                started_at=stamp, finished_at=None, updated_at=stamp)
            if title:
                values["title"] = title
            if request is not None:
                values["request"] = json.dumps(request, sort_keys=True)
            conn.execute(videos.update().where(videos.c.id == video_id).values(**values))
            conn.execute(video_versions.insert().values(
                video_id=video_id, version=version, dag_run_id=run_id, status=VERSION_BUILDING,
                ladder_version=ladder_version, created_at=stamp))
            self._event(conn, video_id, "status", status=QUEUED, version=version, run_id=run_id)
            return version

    @staticmethod
    def _last_activity(conn: Connection, video_id: str, row: Any) -> datetime:
        progress = conn.execute(sa.select(sa.func.max(renditions.c.updated_at)).where(
            renditions.c.video_id == video_id, renditions.c.version == row.latest_version)).scalar()
        return max(aware(t) for t in (row.updated_at, progress) if t is not None)

    @reconnecting
    def add_event(self, video_id: str, kind: str, **detail: Any) -> None:
        """A line in the video's history (e.g. the per-title ladder a run chose)."""
        with self.engine.begin() as conn:
            self._event(conn, video_id, kind, **detail)

    @reconnecting
    def set_status(self, video_id: str, run_id: str, status: str) -> bool:
        with self.engine.begin() as conn:
            return self._set_status(conn, video_id, run_id, status)

    @reconnecting
    def record_source(self, video_id: str, run_id: str, source: SourceInfo) -> None:
        facts = dict(duration=source.picture_end, width=source.width, height=source.height,
                     fps=round(source.fps_float, 3), has_audio=source.has_audio, video_codec=source.video_codec,
                     audio_codec=source.audio_codec)
        with self.engine.begin() as conn:
            conn.execute(videos.update().where(self._owned(video_id, run_id)).values(**facts, updated_at=now()))
            self._event(conn, video_id, "probed", **facts, vfr=source.vfr, hdr=source.hdr,
                        interlaced=source.interlaced, rotation=source.rotation)

    @reconnecting
    def plan_renditions(self, video_id: str, run_id: str, version: int, plans: Iterable[RenditionPlan]) -> None:
        """The version's renditions, ``pending``, replacing those of the same codecs: a per-title decision that
        re-plans only the H.264 rungs leaves the other codecs' rows as they are."""
        plans = list(plans)
        with self.engine.begin() as conn:
            conn.execute(renditions.delete().where(
                renditions.c.video_id == video_id, renditions.c.version == version,
                renditions.c.codec.in_({p.codec for p in plans})))
            stamp = now()
            for plan in plans:
                conn.execute(renditions.insert().values(
                    video_id=video_id, version=version, name=plan.name, width=plan.width, height=plan.height,
                    video_kbps=plan.video_kbps, audio_kbps=plan.audio_kbps, frame_rate=plan.frame_rate,
                    codec=plan.codec, dynamic_range=plan.dynamic_range, status=PENDING, progress=0, updated_at=stamp))
            self._set_status(conn, video_id, run_id, TRANSCODING)
            self._event(conn, video_id, "planned", version=version, renditions=[p.name for p in plans])

    def _rendition_where(self, video_id: str, version: int, name: str) -> sa.ColumnElement[bool]:
        return sa.and_(renditions.c.video_id == video_id, renditions.c.version == version,
                       renditions.c.name == name)

    @reconnecting
    def renditions_started(self, video_id: str, version: int, names: Iterable[str]) -> None:
        """The renditions one encode makes (a whole video's, decoded once) start together, from 0 %."""
        names = list(names)
        with self.engine.begin() as conn:
            conn.execute(renditions.update().where(
                renditions.c.video_id == video_id, renditions.c.version == version, renditions.c.name.in_(names),
            ).values(status=RUNNING, progress=0, error_message=None, updated_at=now()))
            for name in names:
                self._event(conn, video_id, "rendition", name=name, status=RUNNING)

    @reconnecting
    def renditions_progress_at_least(self, video_id: str, version: int, names: Iterable[str],
                                     progress: float) -> None:
        """Renditions encoded together advance together; a report arriving late (a chunk) never moves one back."""
        value = round(min(progress, 99.9), 1)
        with self.engine.begin() as conn:
            conn.execute(renditions.update().where(
                renditions.c.video_id == video_id, renditions.c.version == version,
                renditions.c.name.in_(list(names)), renditions.c.status.in_((PENDING, RUNNING)),
            ).values(status=RUNNING, updated_at=now(), progress=sa.case(
                (renditions.c.progress < value, value), else_=renditions.c.progress)))

    @reconnecting
    def rendition_done(self, video_id: str, version: int, name: str, *, codecs: str, bytes_: int,
                       segments: int, codec: str | None = None, dynamic_range: str | None = None) -> None:
        """A finished rendition; ``codec``/``dynamic_range`` when what was encoded differs from the plan's row
        (None: as planned)."""
        known = {k: v for k, v in (("codec", codec), ("dynamic_range", dynamic_range)) if v is not None}
        with self.engine.begin() as conn:
            conn.execute(renditions.update().where(self._rendition_where(video_id, version, name)).values(
                status=DONE, progress=100, codecs=codecs, bytes=bytes_, segments=segments, updated_at=now(),
                **known))
            self._event(conn, video_id, "rendition", name=name, status=DONE, bytes=bytes_)

    @reconnecting
    def record_variants(self, video_id: str, version: int, variants: Iterable[VariantRecord]) -> None:
        """Renditions' measured bandwidths and playlists, written before the switch: the other codecs' variants,
        measured from their CMAF tracks (``publish`` records the TS tree's with the switch)."""
        with self.engine.begin() as conn:
            self._record_variants(conn, video_id, version, variants)

    def _record_variants(self, conn: Connection, video_id: str, version: int, variants: Iterable[VariantRecord]
                         ) -> None:
        for variant in variants:
            conn.execute(renditions.update().where(self._rendition_where(video_id, version, variant.name))
                         .values(bandwidth=variant.bandwidth, average_bandwidth=variant.average_bandwidth,
                                 playlist_uri=variant.playlist_uri, updated_at=now()))

    @reconnecting
    def record_quality(self, video_id: str, version: int, scores: dict[str, tuple[float, float]]) -> None:
        """Each rendition's measured VMAF (name → (mean, 5th percentile)), and one ``quality`` event."""
        with self.engine.begin() as conn:
            for name, (mean, p5) in scores.items():
                conn.execute(renditions.update().where(self._rendition_where(video_id, version, name)).values(
                    vmaf=mean, vmaf_p5=p5, updated_at=now()))
            self._event(conn, video_id, "quality", version=version,
                        vmaf={name: {"mean": mean, "p5": p5} for name, (mean, p5) in scores.items()})

    @reconnecting
    def rendition_failed(self, video_id: str, version: int, name: str, message: str) -> None:
        message = redact_text(message)
        with self.engine.begin() as conn:
            conn.execute(renditions.update().where(self._rendition_where(video_id, version, name)).values(
                status=FAILED, error_message=message[:2000], updated_at=now()))
            self._event(conn, video_id, "rendition", name=name, status=FAILED, message=message[:500])

    @reconnecting
    def publish(self, *, video_id: str, run_id: str, version: int, master_uri: str, poster_uri: str | None,
                ladder_version: int, variants: Iterable[VariantRecord] = (),
                outputs: Iterable[dict[str, Any]] = ()) -> list[int]:
        """Make ``version`` the one readers see, in one transaction, with its outputs (``version_outputs`` rows:
        kind, name, key, bytes, content_type, duration, codecs, filename). Returns older versions that may be
        pruned."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(videos.c.current_version, videos.c.dag_run_id, videos.c.status)
                               .where(videos.c.id == video_id).with_for_update()).first()
            if row is None or row.status == DELETING:
                raise Superseded(f"video {video_id} no longer exists (or is being deleted)")
            if row.current_version == version:
                return []  # already published by an earlier try of this task
            if row.current_version is not None and row.current_version > version:
                raise Superseded(f"version {row.current_version} of {video_id} is newer than {version}")
            mine = conn.execute(sa.select(video_versions.c.status).where(
                video_versions.c.video_id == video_id, video_versions.c.version == version)).scalar()
            if mine != VERSION_BUILDING:  # failed, or removed (pruned, discarded): its objects may be gone
                raise Superseded(f"version {version} of {video_id} is {mine or 'unknown'}, not publishable")
            stamp = now()
            self._record_variants(conn, video_id, version, variants)
            conn.execute(video_versions.update().where(
                video_versions.c.video_id == video_id, video_versions.c.version == version
            ).values(status=VERSION_PUBLISHED, published_at=stamp))
            conn.execute(version_outputs.delete().where(version_outputs.c.video_id == video_id,
                                                        version_outputs.c.version == version))
            rows = [{**o, "video_id": video_id, "version": version} for o in outputs]
            if rows:
                conn.execute(version_outputs.insert(), rows)
            values: dict[str, Any] = dict(current_version=version, master_uri=master_uri, poster_uri=poster_uri,
                                          ladder_version=ladder_version, updated_at=stamp)
            if row.dag_run_id == run_id:
                values.update(status=READY, error_code=None, error_message=None, finished_at=stamp)
            conn.execute(videos.update().where(videos.c.id == video_id).values(**values))
            self._event(conn, video_id, "status", status=READY, version=version, master_uri=master_uri)
            older = conn.execute(sa.select(video_versions.c.version).where(
                video_versions.c.video_id == video_id, video_versions.c.version < version,
                video_versions.c.status == VERSION_PUBLISHED).order_by(video_versions.c.version.desc())).scalars()
            older = [int(v) for v in older]
            add_published_bytes(conn, version_bytes(conn, video_id, version))
            return older

    @reconnecting
    def notified(self, video_id: str, event_id: str) -> set[str]:
        """The channels (history kinds ``webhook``, ``email``) whose outcome for event ``event_id`` is recorded:
        a retried task does not send those again."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(video_events.c.kind, video_events.c.detail).where(
                video_events.c.video_id == video_id, video_events.c.kind.in_(("webhook", "email")),
                video_events.c.detail.contains(event_id))).all()
        return {row.kind for row in rows if json.loads(row.detail or "{}").get("event_id") == event_id}

    @reconnecting
    def mark_version(self, video_id: str, version: int, status: str) -> None:
        where = sa.and_(video_versions.c.video_id == video_id, video_versions.c.version == version)
        with self.engine.begin() as conn:
            was = conn.execute(sa.select(video_versions.c.status).where(where).with_for_update()).scalar()
            conn.execute(video_versions.update().where(where).values(status=status))
            if was is not None and (was == VERSION_PUBLISHED) != (status == VERSION_PUBLISHED):
                sign = 1 if status == VERSION_PUBLISHED else -1
                add_published_bytes(conn, sign * version_bytes(conn, video_id, version))
            if status != VERSION_PUBLISHED:  # failed or deleted: its early tree goes with it
                drop_early(conn, video_id, version)

    @reconnecting
    def fail(self, *, video_id: str, run_id: str, version: int | None, code: str, message: str) -> bool:
        """Record a failure of this run. Returns False when the run no longer owns the video. The message is
        redacted here, where every failure reaches the catalog: an exception's text may quote a presigned URL."""
        message = redact_text(message)
        with self.engine.begin() as conn:
            if version is not None:
                conn.execute(video_versions.update().where(
                    video_versions.c.video_id == video_id, video_versions.c.version == version,
                    video_versions.c.status == VERSION_BUILDING).values(status=VERSION_FAILED))
                conn.execute(renditions.update().where(
                    renditions.c.video_id == video_id, renditions.c.version == version,
                    renditions.c.status.in_((PENDING, RUNNING))).values(status=FAILED, updated_at=now()))
                drop_early(conn, video_id, version)  # nothing of a failed run stays reachable
            # Only an active video fails: the first reason recorded stands, and `ready` is never undone.
            row = conn.execute(sa.select(videos.c.current_version).where(
                self._owned(video_id, run_id), videos.c.status.in_(ACTIVE_STATUSES)).with_for_update()).first()
            if row is None:
                return False
            # A video that already has a published version stays ready on it: the failed rebuild is noted.
            status = FAILED if row.current_version is None else READY
            conn.execute(videos.update().where(videos.c.id == video_id).values(
                status=status, error_code=code, error_message=message[:2000], finished_at=now(), updated_at=now()))
            self._event(conn, video_id, "status", status=status, error_code=code, message=message[:500],
                        **({"still_serving_version": row.current_version} if status == READY else {}))
            return True
