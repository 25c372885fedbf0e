"""The video catalog: Postgres (SQLite only in the embedded demo) through an Airflow connection.

Status model (ARCHITECTURE.md): video ``queued → probing → transcoding → publishing → ready`` or ``failed``
(with ``error_code`` and ``error_message``); rendition ``pending → running (progress) → done | failed``.
Every change appends to ``video_events``, the history the UI shows. Each run of a video builds a new
version; ``publish`` switches ``current_version`` in one transaction, so readers only see complete versions.
Updates from a run that is no longer the video's latest are ignored, so a stale run cannot overwrite a newer one.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from vodflow import catalog_migrations
from vodflow.probe import SourceInfo

log = logging.getLogger(__name__)

QUEUED, PROBING, TRANSCODING, PUBLISHING, READY, FAILED = (
    "queued", "probing", "transcoding", "publishing", "ready", "failed")
VIDEO_STATUSES = (QUEUED, PROBING, TRANSCODING, PUBLISHING, READY, FAILED)
ACTIVE_STATUSES = (QUEUED, PROBING, TRANSCODING, PUBLISHING)
PENDING, RUNNING, DONE = "pending", "running", "done"
VERSION_BUILDING, VERSION_PUBLISHED, VERSION_FAILED, VERSION_DELETED = "building", "published", "failed", "deleted"

metadata = sa.MetaData()
videos = sa.Table(
    "videos", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("source_uri", sa.Text, nullable=False),
    sa.Column("source_etag", sa.String(128)),
    sa.Column("source_size", sa.BigInteger),
    sa.Column("title", sa.String(200)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error_code", sa.String(32)),
    sa.Column("error_message", sa.Text),
    sa.Column("duration", sa.Float),
    sa.Column("width", sa.Integer),
    sa.Column("height", sa.Integer),
    sa.Column("fps", sa.Float),
    sa.Column("has_audio", sa.Boolean),
    sa.Column("video_codec", sa.String(32)),
    sa.Column("audio_codec", sa.String(32)),
    sa.Column("ladder_version", sa.Integer),
    sa.Column("current_version", sa.Integer),
    sa.Column("latest_version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("master_uri", sa.Text),
    sa.Column("poster_uri", sa.Text),
    sa.Column("dag_run_id", sa.String(250)),
    sa.Column("source_uploaded_at", sa.DateTime(timezone=True)),  # the source object's Last-Modified
    sa.Column("request", sa.Text),  # JSON: the latest run's validated request, what a retry or reprocess reuses
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
)
video_versions = sa.Table(
    "video_versions", metadata,
    sa.Column("video_id", sa.String(64), sa.ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("dag_run_id", sa.String(250), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("ladder_version", sa.Integer),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("video_id", "dag_run_id", name="uq_video_versions_run"),
)
renditions = sa.Table(
    "renditions", metadata,
    sa.Column("video_id", sa.String(64), sa.ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("width", sa.Integer, nullable=False),
    sa.Column("height", sa.Integer, nullable=False),
    sa.Column("video_kbps", sa.Integer),
    sa.Column("audio_kbps", sa.Integer),
    sa.Column("bandwidth", sa.Integer),
    sa.Column("average_bandwidth", sa.Integer),
    sa.Column("codecs", sa.String(64)),
    sa.Column("frame_rate", sa.Float),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("progress", sa.Float, nullable=False, server_default="0"),
    sa.Column("bytes", sa.BigInteger),
    sa.Column("segments", sa.Integer),
    sa.Column("playlist_uri", sa.Text),
    sa.Column("error_message", sa.Text),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
video_events = sa.Table(
    "video_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("video_id", sa.String(64), sa.ForeignKey("videos.id", ondelete="CASCADE"), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text),
)
# Every (bucket, key, etag) the upload watcher has seen: the primary key is what makes "exactly once" hold
# across overlapping watcher runs and restarts. State: claimed (a run is being started) → triggered, or known
# (the video already existed, e.g. an app triggered it over the REST API itself).
uploads = sa.Table(
    "uploads", metadata,
    sa.Column("bucket", sa.String(63), primary_key=True),
    sa.Column("key", sa.String(1024), primary_key=True),
    sa.Column("etag", sa.String(128), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("last_modified", sa.DateTime(timezone=True), nullable=False),
    sa.Column("video_id", sa.String(64), nullable=False),
    sa.Column("dag_run_id", sa.String(250), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("triggered_at", sa.DateTime(timezone=True)),
)
UPLOAD_CLAIMED, UPLOAD_TRIGGERED, UPLOAD_KNOWN = "claimed", "triggered", "known"
sa.Index("ix_videos_status", videos.c.status)
sa.Index("ix_videos_created_at", videos.c.created_at)
sa.Index("ix_video_events_video_id", video_events.c.video_id, video_events.c.id)
sa.Index("ix_videos_source_uploaded_at", videos.c.source_uploaded_at)
sa.Index("ix_videos_source", videos.c.source_uri, videos.c.source_etag)
sa.Index("ix_uploads_last_modified", uploads.c.last_modified)
upload_time = sa.func.coalesce(videos.c.source_uploaded_at, videos.c.created_at)  # when the source arrived

# The schema is Alembic's: numbered revisions in vodflow/catalog_migrations/versions, applied by ``migrate``.
SCHEMA_VERSION = catalog_migrations.HEAD  # the revision this code reads and writes
# A run that has written nothing about its video for this long is presumed dead (see ``register``).
ACTIVE_RUN_STALE_AFTER = timedelta(hours=2)


def now() -> datetime:
    return datetime.now(UTC)


def _aware(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


P = ParamSpec("P")
T = TypeVar("T")
# How long a catalog call keeps retrying while the database is unreachable (e.g. Postgres restarting).
RECONNECT_SECONDS = 90.0


def is_disconnect(exc: BaseException) -> bool:
    """The database went away or refused a new connection (restart, failover); not a query error."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        text = str(exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc).lower()
        return any(sign in text for sign in (
            "server closed the connection", "connection refused", "shutting down", "starting up",
            "terminating connection", "connection failed", "could not connect", "connection is closed",
            "ssl connection has been closed", "consuming input failed", "connection reset", "broken pipe",
            "could not receive data", "could not send data"))
    return False


def reconnecting(method: Callable[P, T]) -> Callable[P, T]:
    """Retry a catalog call (one transaction) while the database is away, instead of failing the task.

    A transaction interrupted by a lost connection was rolled back, so running it again is safe; the writes
    are idempotent per run besides (status updates, progress, insert-if-absent)."""

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        deadline = time.monotonic() + getattr(args[0], "reconnect_seconds", RECONNECT_SECONDS)
        delay = 0.5
        while True:
            try:
                return method(*args, **kwargs)
            except sa.exc.DBAPIError as exc:
                if not is_disconnect(exc) or time.monotonic() + delay > deadline:
                    raise
                log.warning("Catalog database unreachable (%s); retrying %s in %.1f s",
                            str(exc.orig).strip().splitlines()[0] if exc.orig else exc, method.__name__, delay)
                time.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, 10.0)

    return call


class Superseded(Exception):
    """A newer version of the video was published (or is being built by a newer run)."""


class AlreadyActive(Exception):
    """Another run is building this video right now; a second run would only race it."""

    def __init__(self, video_id: str, run_id: str) -> None:
        super().__init__(f"video {video_id} is already being processed by run {run_id}")
        self.video_id, self.run_id = video_id, run_id


@dataclass(frozen=True)
class UploadObject:
    """An object the upload watcher found under the watched prefix."""

    bucket: str
    key: str
    etag: str
    size: int
    last_modified: datetime


@dataclass(frozen=True)
class VariantRecord:
    name: str
    bandwidth: int
    average_bandwidth: int
    playlist_uri: str


@dataclass(frozen=True)
class RenditionPlan:
    name: str
    width: int
    height: int
    video_kbps: int
    audio_kbps: int
    frame_rate: float


class Catalog:
    def __init__(self, engine: Engine, reconnect_seconds: float = RECONNECT_SECONDS) -> None:
        self.engine = engine
        self.reconnect_seconds = reconnect_seconds  # 0: fail at once (e.g. an HTTP request answering 503)

    # Schema ------------------------------------------------------------------------------------------------
    @reconnecting
    def schema_version(self) -> int:
        """The database's schema version: its Alembic revision's number (a catalog from before Alembic: its
        ``vodflow_schema_version``); 0 for an empty database."""
        with self.engine.connect() as conn:
            return catalog_migrations.current_version(conn)

    @reconnecting
    def migrate(self) -> int:
        """Apply pending migrations (Alembic; a pre-Alembic catalog is stamped first); safe to call from many
        processes at once."""
        with self.engine.connect() as conn:  # a catalog from before Alembic counts as behind: it gets stamped
            current = catalog_migrations.current_version(conn, before_alembic=False)
        if current < SCHEMA_VERSION:
            catalog_migrations.upgrade(self.engine)
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
        result = conn.execute(
            videos.update().where(self._owned(video_id, run_id)).values(status=status, updated_at=now(), **values))
        if result.rowcount:
            self._event(conn, video_id, "status", status=status)
        return bool(result.rowcount)

    # Writes from the pipeline ------------------------------------------------------------------------------
    @reconnecting
    def register(self, *, video_id: str, source_uri: str, etag: str, size: int, title: str | None,
                 run_id: str, ladder_version: int, uploaded_at: datetime | None = None,
                 request: dict[str, Any] | None = None) -> int:
        """Create or claim the video for this run and allocate the version it builds. Idempotent per run.

        ``request`` (the run's validated conf) replaces the stored one: the latest run's request is what a
        retry or reprocess run starts from."""
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
            insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            created = conn.execute(insert(videos).values(
                id=video_id, source_uri=source_uri, source_etag=etag, source_size=size, title=title,
                status=QUEUED, latest_version=0, created_at=stamp, updated_at=stamp,
            ).on_conflict_do_nothing(index_elements=["id"]).returning(videos.c.id)).first() is not None
            row = conn.execute(
                sa.select(videos.c.latest_version, videos.c.status, videos.c.dag_run_id, videos.c.updated_at)
                .where(videos.c.id == video_id).with_for_update()
            ).first()
            if created:
                latest = 0
            else:
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
        return max(_aware(t) for t in (row.updated_at, progress) if t is not None)

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
        facts = dict(duration=source.duration, width=source.width, height=source.height,
                     fps=round(source.fps_float, 3), has_audio=source.has_audio, video_codec=source.video_codec,
                     audio_codec=source.audio_codec)
        with self.engine.begin() as conn:
            conn.execute(videos.update().where(self._owned(video_id, run_id)).values(**facts, updated_at=now()))
            self._event(conn, video_id, "probed", **facts, vfr=source.vfr, hdr=source.hdr,
                        interlaced=source.interlaced, rotation=source.rotation)

    @reconnecting
    def plan_renditions(self, video_id: str, run_id: str, version: int, plans: Iterable[RenditionPlan]) -> None:
        plans = list(plans)
        with self.engine.begin() as conn:
            conn.execute(renditions.delete().where(
                renditions.c.video_id == video_id, renditions.c.version == version))
            stamp = now()
            for plan in plans:
                conn.execute(renditions.insert().values(
                    video_id=video_id, version=version, name=plan.name, width=plan.width, height=plan.height,
                    video_kbps=plan.video_kbps, audio_kbps=plan.audio_kbps, frame_rate=plan.frame_rate,
                    status=PENDING, progress=0, updated_at=stamp))
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
                       segments: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(renditions.update().where(self._rendition_where(video_id, version, name)).values(
                status=DONE, progress=100, codecs=codecs, bytes=bytes_, segments=segments, updated_at=now()))
            self._event(conn, video_id, "rendition", name=name, status=DONE, bytes=bytes_)

    @reconnecting
    def rendition_failed(self, video_id: str, version: int, name: str, message: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(renditions.update().where(self._rendition_where(video_id, version, name)).values(
                status=FAILED, error_message=message[:2000], updated_at=now()))
            self._event(conn, video_id, "rendition", name=name, status=FAILED, message=message[:500])

    @reconnecting
    def publish(self, *, video_id: str, run_id: str, version: int, master_uri: str, poster_uri: str | None,
                ladder_version: int, variants: Iterable[VariantRecord] = ()) -> list[int]:
        """Make ``version`` the one readers see, in one transaction. Returns older versions that may be pruned."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(videos.c.current_version, videos.c.dag_run_id)
                               .where(videos.c.id == video_id).with_for_update()).first()
            if row is None:
                raise Superseded(f"video {video_id} no longer exists")
            if row.current_version == version:
                return []  # already published by an earlier try of this task
            if row.current_version is not None and row.current_version > version:
                raise Superseded(f"version {row.current_version} of {video_id} is newer than {version}")
            stamp = now()
            for variant in variants:
                conn.execute(renditions.update().where(self._rendition_where(video_id, version, variant.name))
                             .values(bandwidth=variant.bandwidth, average_bandwidth=variant.average_bandwidth,
                                     playlist_uri=variant.playlist_uri, updated_at=stamp))
            conn.execute(video_versions.update().where(
                video_versions.c.video_id == video_id, video_versions.c.version == version
            ).values(status=VERSION_PUBLISHED, published_at=stamp))
            values: dict[str, Any] = dict(current_version=version, master_uri=master_uri, poster_uri=poster_uri,
                                          ladder_version=ladder_version, updated_at=stamp)
            if row.dag_run_id == run_id:
                values.update(status=READY, error_code=None, error_message=None, finished_at=stamp)
            conn.execute(videos.update().where(videos.c.id == video_id).values(**values))
            self._event(conn, video_id, "status", status=READY, version=version, master_uri=master_uri)
            older = conn.execute(sa.select(video_versions.c.version).where(
                video_versions.c.video_id == video_id, video_versions.c.version < version,
                video_versions.c.status == VERSION_PUBLISHED).order_by(video_versions.c.version.desc())).scalars()
            return [int(v) for v in older]

    @reconnecting
    def mark_version(self, video_id: str, version: int, status: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(video_versions.update().where(
                video_versions.c.video_id == video_id, video_versions.c.version == version).values(status=status))

    @reconnecting
    def fail(self, *, video_id: str, run_id: str, version: int | None, code: str, message: str) -> bool:
        """Record a failure of this run. Returns False when the run no longer owns the video."""
        with self.engine.begin() as conn:
            if version is not None:
                conn.execute(video_versions.update().where(
                    video_versions.c.video_id == video_id, video_versions.c.version == version,
                    video_versions.c.status == VERSION_BUILDING).values(status=VERSION_FAILED))
                conn.execute(renditions.update().where(
                    renditions.c.video_id == video_id, renditions.c.version == version,
                    renditions.c.status.in_((PENDING, RUNNING))).values(status=FAILED, updated_at=now()))
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

    # Upload watcher --------------------------------------------------------------------------------------
    @reconnecting
    def claim_uploads(self, bucket: str, found: Iterable[UploadObject], video_id_for: Callable[[UploadObject], str],
                      run_id_for: Callable[[str], str]) -> list[dict[str, Any]]:
        """Claim each (bucket, key, etag) once; returns the claims that still need their run started.

        The insert that wins the primary key is the claim, so overlapping watcher runs cannot both claim an
        object. Claims from an earlier watcher run that died before starting the run are returned again; the
        run id is deterministic, so starting it twice is a no-op.
        """
        stamp = now()
        with self.engine.begin() as conn:
            insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            for obj in found:
                video_id = video_id_for(obj)
                # Already registered, whatever its id: an app uploaded it and started the run itself.
                exists = conn.execute(sa.select(videos.c.id).where(
                    videos.c.source_uri == f"s3://{obj.bucket}/{obj.key}", videos.c.source_etag == obj.etag)).first()
                conn.execute(insert(uploads).values(
                    bucket=obj.bucket, key=obj.key, etag=obj.etag, size=obj.size, last_modified=obj.last_modified,
                    video_id=video_id, dag_run_id=run_id_for(video_id),
                    state=UPLOAD_KNOWN if exists else UPLOAD_CLAIMED, claimed_at=stamp,
                ).on_conflict_do_nothing(index_elements=["bucket", "key", "etag"]))
            rows = conn.execute(sa.select(uploads).where(uploads.c.state == UPLOAD_CLAIMED,
                                                         uploads.c.bucket == bucket)
                                .order_by(uploads.c.last_modified)).mappings().all()
            return [{k: _aware(v) for k, v in row.items()} for row in rows]

    @reconnecting
    def pending_claims(self, bucket: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(uploads).where(
                uploads.c.bucket == bucket, uploads.c.state == UPLOAD_CLAIMED)).scalar() or 0)

    @reconnecting
    def mark_uploads_triggered(self, run_ids: Iterable[str]) -> None:
        with self.engine.begin() as conn:
            conn.execute(uploads.update().where(uploads.c.dag_run_id.in_(list(run_ids)),
                                                uploads.c.state == UPLOAD_CLAIMED)
                         .values(state=UPLOAD_TRIGGERED, triggered_at=now()))

    @reconnecting
    def seen_uploads(self, bucket: str, since: datetime) -> set[tuple[str, str]]:
        """(key, etag) of every object already handled that was modified at or after ``since``."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(uploads.c.key, uploads.c.etag).where(
                uploads.c.bucket == bucket, uploads.c.last_modified >= since))
            return {(row.key, row.etag) for row in rows}

    @reconnecting
    def latest_upload(self, bucket: str) -> datetime | None:
        with self.engine.connect() as conn:
            return _aware(conn.execute(sa.select(sa.func.max(uploads.c.last_modified))
                                       .where(uploads.c.bucket == bucket)).scalar())

    # Reprocessing ------------------------------------------------------------------------------------------
    def videos_uploaded_between(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Videos whose source was uploaded in [start, end) and that no run is building right now."""
        return self.video_rows(sa.and_(upload_time >= start, upload_time < end,
                                       videos.c.status.not_in(ACTIVE_STATUSES)), upload_time)

    def outdated_videos(self, ladder_version: int, limit: int) -> list[dict[str, Any]]:
        """Published videos encoded with an older ladder than ``ladder_version``, oldest first."""
        return self.video_rows(sa.and_(videos.c.status == READY, videos.c.ladder_version < ladder_version),
                               videos.c.updated_at, limit)

    @reconnecting
    def video_rows(self, where: sa.ColumnElement[bool], order: Any, limit: int | None = None
                   ) -> list[dict[str, Any]]:
        """Videos matching a condition on the catalog's tables (selection queries live with their users)."""
        with self.engine.connect() as conn:
            query = sa.select(videos).where(where).order_by(order, videos.c.id)
            rows = conn.execute(query.limit(limit) if limit else query).mappings().all()
            return [{k: _aware(v) for k, v in row.items()} for row in rows]

    # Operator view -----------------------------------------------------------------------------------------
    @reconnecting
    def list_videos(self, *, status: str | None = None, search: str | None = None, run_id: str | None = None,
                    limit: int = 50, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """A page of videos, newest first, each with its latest version's renditions; and the total count."""
        where: list[sa.ColumnElement[bool]] = []
        if status:
            where.append(videos.c.status == status)
        if run_id:
            where.append(videos.c.dag_run_id == run_id)
        if search:
            pattern = "%" + search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append(sa.or_(sa.func.lower(videos.c.title).like(pattern, escape="\\"),
                                sa.func.lower(videos.c.id).like(pattern, escape="\\")))
        with self.engine.connect() as conn:
            total = int(conn.execute(sa.select(sa.func.count()).select_from(videos).where(*where)).scalar() or 0)
            rows = conn.execute(sa.select(videos).where(*where)
                                .order_by(videos.c.created_at.desc(), videos.c.id).limit(limit).offset(offset)
                                ).mappings().all()
            found = [{k: _aware(v) for k, v in row.items()} for row in rows]
            if found:
                wanted = sa.tuple_(renditions.c.video_id, renditions.c.version).in_(
                    [(v["id"], v["latest_version"]) for v in found])
                by_video: dict[str, list[dict[str, Any]]] = {}
                for row in conn.execute(sa.select(renditions).where(wanted).order_by(
                        (renditions.c.width * renditions.c.height).desc())).mappings():
                    by_video.setdefault(row["video_id"], []).append({k: _aware(v) for k, v in row.items()})
                for video in found:
                    video["renditions"] = by_video.get(video["id"], [])
        return found, total

    @reconnecting
    def delete_video(self, video_id: str) -> bool:
        """Remove a video's rows (renditions, versions, events cascade). Refused while a run is building it."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(videos.c.status).where(videos.c.id == video_id).with_for_update()).first()
            if row is None:
                return False
            if row.status in ACTIVE_STATUSES:
                raise AlreadyActive(video_id, "")
            for table in (renditions, video_versions, video_events):
                conn.execute(table.delete().where(table.c.video_id == video_id))
            conn.execute(videos.delete().where(videos.c.id == video_id))
            return True

    @reconnecting
    def stats(self, since: datetime) -> dict[str, Any]:
        """Counts by status, what finished since ``since``, and the mean processing time of those that succeeded."""
        with self.engine.connect() as conn:
            by_status = dict.fromkeys(VIDEO_STATUSES, 0)
            by_status.update({row.status: int(row.n) for row in conn.execute(
                sa.select(videos.c.status, sa.func.count().label("n")).group_by(videos.c.status))})
            finished = conn.execute(sa.select(videos.c.status, videos.c.started_at, videos.c.finished_at).where(
                videos.c.finished_at >= since)).all()
        durations = [(_aware(f) - _aware(s)).total_seconds() for st, s, f in finished if st == READY and s and f]
        return {"by_status": by_status,
                "completed_today": sum(1 for r in finished if r.status == READY),
                "failed_today": sum(1 for r in finished if r.status == FAILED),
                "average_processing_seconds": round(sum(durations) / len(durations), 1) if durations else None,
                "active": sum(by_status[s] for s in ACTIVE_STATUSES), "queued": by_status[QUEUED]}

    @reconnecting
    def activity_marker(self, video_id: str) -> tuple[Any, ...]:
        """Changes whenever the video or its renditions change: what a live view polls."""
        with self.engine.connect() as conn:
            video = conn.execute(sa.select(videos.c.updated_at, videos.c.latest_version)
                                 .where(videos.c.id == video_id)).first()
            if video is None:
                return ()
            last = conn.execute(sa.select(sa.func.max(renditions.c.updated_at), sa.func.sum(renditions.c.progress))
                                .where(renditions.c.video_id == video_id,
                                       renditions.c.version == video.latest_version)).first()
            events = conn.execute(sa.select(sa.func.max(video_events.c.id))
                                  .where(video_events.c.video_id == video_id)).scalar()
            return (video.updated_at, video.latest_version, *last, events)

    # Reads -------------------------------------------------------------------------------------------------
    @reconnecting
    def get_video(self, video_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(videos).where(videos.c.id == video_id)).mappings().first()
            return {k: _aware(v) for k, v in row.items()} if row else None

    @reconnecting
    def get_renditions(self, video_id: str, version: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(renditions).where(
                renditions.c.video_id == video_id, renditions.c.version == version
            ).order_by((renditions.c.width * renditions.c.height).desc())).mappings().all()
            return [{k: _aware(v) for k, v in row.items()} for row in rows]

    @reconnecting
    def get_versions(self, video_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(video_versions).where(video_versions.c.video_id == video_id)
                                .order_by(video_versions.c.version)).mappings().all()
            return [{k: _aware(v) for k, v in row.items()} for row in rows]

    @reconnecting
    def get_events(self, video_id: str, after_id: int = 0, limit: int = 500) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(video_events).where(
                video_events.c.video_id == video_id, video_events.c.id > after_id
            ).order_by(video_events.c.id).limit(limit)).mappings().all()
            return [{**{k: _aware(v) for k, v in row.items()},
                     "detail": json.loads(row["detail"]) if row["detail"] else {}} for row in rows]


def engine_url_for_connection(conn_id: str) -> sa.URL:
    """SQLAlchemy URL from an Airflow connection: the postgres provider's hook, or a SQLite file path."""
    from airflow.sdk import BaseHook

    connection = BaseHook.get_connection(conn_id)
    if connection.conn_type == "sqlite":
        return sa.make_url(f"sqlite:///{connection.host}")
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    return PostgresHook(postgres_conn_id=conn_id).sqlalchemy_url


def make_engine(url: sa.URL | str) -> Engine:
    url = sa.make_url(url)
    if url.get_backend_name() == "sqlite":
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=4, pool_recycle=1800)


@lru_cache(maxsize=4)
def catalog_for_connection(conn_id: str, reconnect_seconds: float = RECONNECT_SECONDS) -> Catalog:
    """One engine per process and connection; the schema is brought up to date on first use."""
    catalog = Catalog(make_engine(engine_url_for_connection(conn_id)), reconnect_seconds)
    catalog.migrate()
    return catalog
