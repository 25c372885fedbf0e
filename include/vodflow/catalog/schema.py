"""The catalog's tables and the words it speaks: statuses (ARCHITECTURE.md's status model) and version states.

Status model: video ``queued → probing → transcoding → publishing → ready`` or ``failed`` (with ``error_code``
and ``error_message``); rendition ``pending → running (progress) → done | failed``. Every change appends to
``video_events``, the history the UI shows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from vodflow.catalog.migrations import HEAD

QUEUED, PROBING, TRANSCODING, PUBLISHING, READY, FAILED = (
    "queued", "probing", "transcoding", "publishing", "ready", "failed")
# ``deleting``: a delete has begun (media being removed); no run may register the video until it is gone.
DELETING = "deleting"
VIDEO_STATUSES = (QUEUED, PROBING, TRANSCODING, PUBLISHING, READY, FAILED, DELETING)
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
    # Early playback (``catalog.early``): the building first version a player may start on, and since when.
    sa.Column("playable_version", sa.Integer),
    sa.Column("playable_at", sa.DateTime(timezone=True)),
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
    sa.Column("vmaf", sa.Float),  # measured VMAF (sampled), mean and 5th percentile; per-title runs
    sa.Column("vmaf_p5", sa.Float),
    # The video codec (media.encode.codecs: h264, av1, hevc) and HLS VIDEO-RANGE (SDR, PQ, HLG) of the rendition.
    sa.Column("codec", sa.String(16), nullable=False, server_default="h264"),
    sa.Column("dynamic_range", sa.String(8), nullable=False, server_default="SDR"),
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
# (the video already existed, e.g. an app triggered it over the REST API itself), or starting (an app's run is
# being started by the checked trigger: known once it exists; claimed — the watcher's to start — if it fails).
# ``conf``: only the checked trigger writes it (its claim, ``starting``): the app's conf as that endpoint accepted
# it, which the watcher starts a handed-over run with; cleared once the run exists.
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
    sa.Column("conf", sa.Text),  # JSON: an app's checked conf, while its run is to be started (see above)
)
# Every published output of a version (the HLS tree, downloads, storyboard, CMAF manifests): what the API lists.
version_outputs = sa.Table(
    "version_outputs", metadata,
    sa.Column("video_id", sa.String(64), sa.ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("content_type", sa.String(64), nullable=False),
    sa.Column("duration", sa.Float),
    sa.Column("codecs", sa.String(128)),
    sa.Column("filename", sa.String(255)),
)
# Per-user rate and quota counters (``catalog.counters``): one row per (subject, bucket, fixed window), bumped by one
# atomic upsert so every api-server process and host count together; a subject's older windows are pruned when its
# next window opens. ``limit_refusals``: requests refused by a limit, by reason (the metrics' counter).
rate_counters = sa.Table(
    "rate_counters", metadata,
    sa.Column("subject", sa.String(256), primary_key=True),
    sa.Column("bucket", sa.String(32), primary_key=True),
    sa.Column("window_start", sa.BigInteger, primary_key=True),  # Unix seconds, a multiple of the window
    sa.Column("count", sa.BigInteger, nullable=False),
)
limit_refusals = sa.Table(
    "limit_refusals", metadata,
    sa.Column("reason", sa.String(64), primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
)
# Totals the metrics read instead of adding up all of history per scrape (``catalog.metrics``): ``published_bytes``
# (kept by publish, prune and delete), the encode histograms folded from ``encoded`` events up to the event id in
# ``encoded_through`` (name, label: the rendition, le: the bucket's bound, "" for none).
metric_totals = sa.Table(
    "metric_totals", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("label", sa.String(64), primary_key=True),
    sa.Column("le", sa.String(16), primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
)
# Postgres: (status, ±n) rows appended by triggers on ``videos`` (migration 0009) whenever a status changes; the counts
# by status are their sums (``catalog.metrics.videos_by_status``), compacted by the readers. Unused on SQLite.
video_status_deltas = sa.Table(
    "video_status_deltas", metadata,
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("n", sa.BigInteger, nullable=False),
)
# A version's early tree (``catalog.early``, ``pipeline.early``): each track's segments uploaded so far, and the
# track's state: how many its EVENT playlist lists (the contiguous prefix from seq 0), its last seq once known.
early_tracks = sa.Table(
    "early_tracks", metadata,
    sa.Column("video_id", sa.String(64), sa.ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("track", sa.String(32), primary_key=True),
    sa.Column("last_seq", sa.Integer),
    sa.Column("listed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("ended", sa.Boolean, nullable=False, server_default=sa.false()),
)
early_segments = sa.Table(
    "early_segments", metadata,
    sa.Column("video_id", sa.String(64), sa.ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("track", sa.String(32), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("uri", sa.String(255), nullable=False),
    sa.Column("duration", sa.Float, nullable=False),
)
UPLOAD_CLAIMED, UPLOAD_TRIGGERED, UPLOAD_KNOWN, UPLOAD_STARTING = "claimed", "triggered", "known", "starting"
# The list's order, alone and after a status filter (newest first: scanned backwards); a run's video; what finished
# today (the stats); failures by code (the metrics). On Postgres with pg_trgm, migration 0009 adds trigram indexes on
# lower(title) and lower(id) for the search: outside the metadata (optional, Postgres only), and autogenerate and
# the schema check leave them alone (``OPTIONAL_INDEXES``).
OPTIONAL_INDEXES = ("ix_videos_title_trgm", "ix_videos_id_trgm")
sa.Index("ix_videos_status", videos.c.status)  # the active videos; the counts by status on SQLite
sa.Index("ix_videos_created_id", videos.c.created_at, videos.c.id)
sa.Index("ix_videos_status_created_id", videos.c.status, videos.c.created_at, videos.c.id)
sa.Index("ix_videos_dag_run_id", videos.c.dag_run_id)
sa.Index("ix_videos_finished_at", videos.c.finished_at)
sa.Index("ix_videos_error_code", videos.c.error_code)
sa.Index("ix_video_versions_dag_run_id", video_versions.c.dag_run_id)  # the queue: facts about runs in flight
sa.Index("ix_video_events_video_id", video_events.c.video_id, video_events.c.id)
sa.Index("ix_videos_source_uploaded_at", videos.c.source_uploaded_at)
sa.Index("ix_videos_source", videos.c.source_uri, videos.c.source_etag)
sa.Index("ix_uploads_last_modified", uploads.c.last_modified)
upload_time = sa.func.coalesce(videos.c.source_uploaded_at, videos.c.created_at)  # when the source arrived

# The schema is Alembic's: numbered revisions in vodflow/catalog/migrations/versions, applied by ``migrate``.
SCHEMA_VERSION = HEAD  # the revision this code reads and writes
# A run that has written nothing about its video for this long is presumed dead (see ``register``).
ACTIVE_RUN_STALE_AFTER = timedelta(hours=2)


def now() -> datetime:
    return datetime.now(UTC)


def aware(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
