"""Reads and the queries behind the watcher, reprocessing and the operator view."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from vodflow.catalog.connection import dialect_insert, reconnecting
from vodflow.catalog.metrics import add_published_bytes, version_bytes, videos_by_status
from vodflow.catalog.records import AlreadyActive, UploadObject
from vodflow.catalog.schema import (
    ACTIVE_STATUSES,
    DELETING,
    FAILED,
    QUEUED,
    READY,
    UPLOAD_CLAIMED,
    UPLOAD_KNOWN,
    UPLOAD_STARTING,
    UPLOAD_TRIGGERED,
    VERSION_PUBLISHED,
    aware,
    early_segments,
    early_tracks,
    now,
    renditions,
    upload_time,
    uploads,
    version_outputs,
    video_events,
    video_versions,
    videos,
)
from vodflow.media.encode.codecs import CODECS

# Renditions in the order people read them: H.264 (the fallback) first, then the other codecs in the registry's
# order, largest picture first within each.
RENDITION_ORDER = (sa.case({c: i for i, c in enumerate(CODECS)}, value=renditions.c.codec, else_=len(CODECS)),
                   (renditions.c.width * renditions.c.height).desc())

# An app's claim still ``starting`` after this long was left by a trigger that never finished (its api-server
# process died in between): the watcher takes it over. Far longer than any trigger call takes.
APP_TRIGGER_GRACE = timedelta(minutes=5)


def _pending(bucket: str) -> sa.ColumnElement[bool]:
    """Claims whose run the watcher is to start: claimed, or an app's ``starting`` claim left behind."""
    return sa.and_(uploads.c.bucket == bucket, sa.or_(
        uploads.c.state == UPLOAD_CLAIMED,
        sa.and_(uploads.c.state == UPLOAD_STARTING, uploads.c.claimed_at < now() - APP_TRIGGER_GRACE)))


# The list counts its matches exactly up to here; beyond, on Postgres, the total is the planner's estimate (counting
# a million rows per page view is what made the list slow) and the answer says so.
EXACT_TOTAL_UP_TO = 10_000


def _total(conn: Connection, where: list[sa.ColumnElement[bool]]) -> tuple[int, bool]:
    """The number of videos matching ``where``: exact up to EXACT_TOTAL_UP_TO, else (Postgres) the planner's
    estimate. Postgres asks the planner first: when it expects more than that (a common word), nothing is counted
    (counting a common word's matches was most of a search's time)."""
    matching = sa.select(videos.c.id).where(*where)
    if conn.dialect.name == "postgresql":
        compiled = matching.compile(dialect=conn.dialect)
        plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + str(compiled), compiled.params).scalar()
        estimate = int((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]["Plan Rows"])
        if estimate > EXACT_TOTAL_UP_TO:
            return estimate, True
    else:
        estimate = 0
    counted = int(conn.execute(sa.select(sa.func.count()).select_from(
        matching.limit(EXACT_TOTAL_UP_TO + 1).subquery())).scalar() or 0)
    if counted <= EXACT_TOTAL_UP_TO:
        return counted, False
    if conn.dialect.name == "postgresql":
        return max(estimate, counted), True
    # SQLite (the embedded demo): small enough to count
    return int(conn.execute(sa.select(sa.func.count()).select_from(matching.subquery())).scalar() or 0), False


def _seconds_between(conn: Connection, start: Any, end: Any) -> sa.ColumnElement[float]:
    if conn.dialect.name == "postgresql":
        return sa.extract("epoch", end - start)
    return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0


class CatalogQueries:
    """Mixed into ``Catalog``: everything that reads (and the watcher's claims and deletes)."""

    engine: Engine

    # Upload watcher --------------------------------------------------------------------------------------
    @reconnecting
    def claim_uploads(self, bucket: str, found: Iterable[UploadObject], video_id_for: Callable[[UploadObject], str],
                      run_id_for: Callable[[str], str]) -> list[dict[str, Any]]:
        """Claim each (bucket, key, etag) once; returns the claims that still need their run started.

        The insert that wins the primary key is the claim, so overlapping watcher runs cannot both claim an
        object. Claims from an earlier watcher run that died before starting the run are returned again, and so
        are an app's claims whose trigger failed or never finished (with the app's run id, video id and
        ``conf``: its checked conf, JSON); the run id is deterministic, so starting it twice is a no-op.
        """
        stamp = now()
        with self.engine.begin() as conn:
            insert = dialect_insert(conn)
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
            conn.execute(uploads.update().where(_pending(bucket), uploads.c.state == UPLOAD_STARTING)
                         .values(state=UPLOAD_CLAIMED))
            rows = conn.execute(sa.select(uploads).where(uploads.c.state == UPLOAD_CLAIMED,
                                                         uploads.c.bucket == bucket)
                                .order_by(uploads.c.last_modified)).mappings().all()
            return [{k: aware(v) for k, v in row.items()} for row in rows]

    @reconnecting
    def record_app_upload(self, obj: UploadObject, video_id: str, run_id: str, starting: bool = False,
                          conf: Mapping[str, Any] | None = None) -> bool:
        """An app started the run for this object itself: write the watcher's claim as ``known``, so the
        watcher never starts it again, however late it looks. ``starting``: the run is about to be triggered
        (the checked trigger): the claim is ``starting`` until the run exists — recorded again without
        ``starting`` (after the trigger, or by the run's ``register``) it becomes ``known``; if the trigger
        fails, ``release_app_upload``. False when the object was claimed already.

        ``conf`` (with ``starting`` only: the checked trigger's, as it accepted it) is kept with the claim, so a
        run the watcher has to start is the run the app asked for; it is dropped once the run exists."""
        if conf is not None and not starting:
            raise ValueError("a conf is kept only with a starting claim (the checked trigger's)")
        with self.engine.begin() as conn:
            insert = dialect_insert(conn)
            row = conn.execute(insert(uploads).values(
                bucket=obj.bucket, key=obj.key, etag=obj.etag, size=obj.size, last_modified=obj.last_modified,
                video_id=video_id, dag_run_id=run_id, state=UPLOAD_STARTING if starting else UPLOAD_KNOWN,
                claimed_at=now(), conf=json.dumps(conf, sort_keys=True) if conf is not None else None,
            ).on_conflict_do_nothing(index_elements=["bucket", "key", "etag"]).returning(uploads.c.key)).first()
            if row is None and not starting:  # this run's own claim, written before its trigger: it exists now
                conn.execute(uploads.update().where(self._upload(obj), uploads.c.dag_run_id == run_id,
                                                    uploads.c.state == UPLOAD_STARTING)
                             .values(state=UPLOAD_KNOWN, conf=None))
            return row is not None

    @reconnecting
    def release_app_upload(self, obj: UploadObject, run_id: str, to_watcher: bool) -> str | None:
        """The app's trigger raised: settle its claim under the row lock and return the claim's state now.

        Still ``starting``: it becomes the watcher's to start (``to_watcher``: ``claimed``, same run id, video id
        and conf, started on its next poll), or is dropped (an object the watcher does not watch: None, the app
        may start it again). Already ``known`` or ``triggered`` with this run id: the run exists after all — the
        trigger raised after Airflow had created it (a lost answer, a timeout) and its ``register`` confirmed the
        claim, or the watcher started it — so the state is returned as it is and the app is told its run started,
        never to start another. ``claimed``: the watcher took it over after ``APP_TRIGGER_GRACE`` and starts it.
        None when the claim is not this run's."""
        with self.engine.begin() as conn:
            state = conn.execute(sa.select(uploads.c.state).where(self._upload(obj), uploads.c.dag_run_id == run_id)
                                 .with_for_update()).scalar()
            if state != UPLOAD_STARTING:
                return state
            where = sa.and_(self._upload(obj), uploads.c.dag_run_id == run_id, uploads.c.state == UPLOAD_STARTING)
            if to_watcher:
                conn.execute(uploads.update().where(where).values(state=UPLOAD_CLAIMED))
                return UPLOAD_CLAIMED
            conn.execute(uploads.delete().where(where))
            return None

    @staticmethod
    def _upload(obj: UploadObject) -> sa.ColumnElement[bool]:
        return sa.and_(uploads.c.bucket == obj.bucket, uploads.c.key == obj.key, uploads.c.etag == obj.etag)

    @reconnecting
    def pending_claims(self, bucket: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(uploads).where(
                _pending(bucket))).scalar() or 0)

    @reconnecting
    def mark_uploads_triggered(self, run_ids: Iterable[str]) -> None:
        with self.engine.begin() as conn:
            conn.execute(uploads.update().where(uploads.c.dag_run_id.in_(list(run_ids)),
                                                uploads.c.state == UPLOAD_CLAIMED)
                         .values(state=UPLOAD_TRIGGERED, triggered_at=now(), conf=None))  # the run has it now

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
            return aware(conn.execute(sa.select(sa.func.max(uploads.c.last_modified))
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
            return [{k: aware(v) for k, v in row.items()} for row in rows]

    # Operator view -----------------------------------------------------------------------------------------
    def list_videos(self, *, status: str | None = None, search: str | None = None, run_id: str | None = None,
                    limit: int = 50, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """A page of videos, newest first, each with its latest version's renditions; and the total count."""
        found, total, _ = self.list_videos_page(status=status, search=search, run_id=run_id, limit=limit,
                                                offset=offset)
        return found, total

    @reconnecting
    def list_videos_page(self, *, status: str | None = None, search: str | None = None, run_id: str | None = None,
                         limit: int = 50, offset: int = 0, after: str | None = None
                         ) -> tuple[list[dict[str, Any]], int, bool]:
        """``list_videos``, and whether the total is the planner's estimate (a search or a run's filter matching
        more than ``EXACT_TOTAL_UP_TO``, on Postgres; the counts by status are exact there).

        The page's ids come from the index alone (``ix_videos_created_id``, after a status
        ``ix_videos_status_created_id``), so a deep offset walks index entries, not rows; ``after`` (the last id of
        the page before: keyset paging) starts right after that video in the index and walks nothing. The total
        counts every match, whatever ``after``."""
        where: list[sa.ColumnElement[bool]] = []
        if status:
            where.append(videos.c.status == status)
        if run_id:
            where.append(videos.c.dag_run_id == run_id)
        if search:
            pattern = "%" + search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append(sa.or_(sa.func.lower(videos.c.title).like(pattern, escape="\\"),
                                sa.func.lower(videos.c.id).like(pattern, escape="\\")))
        newest_first = (videos.c.created_at.desc(), videos.c.id.desc())
        counts = videos_by_status(self.engine) if not (search or run_id) and self.engine.name == "postgresql" else None
        with self.engine.connect() as conn:
            if counts is not None:  # exact, from the counts by status
                total, estimated = (counts.get(status, 0) if status else sum(counts.values())), False
            else:
                total, estimated = _total(conn, where)
            if after:  # an id that is gone (deleted meanwhile) ends the walk: an empty page
                anchor = conn.execute(sa.select(videos.c.created_at).where(videos.c.id == after)).scalar()
                where.append(sa.tuple_(videos.c.created_at, videos.c.id) < sa.tuple_(anchor, after)
                             if anchor is not None else sa.false())
            page = sa.select(videos.c.id).where(*where).order_by(*newest_first).limit(limit).offset(offset)
            rows = conn.execute(sa.select(videos).where(videos.c.id.in_(page.scalar_subquery()))
                                .order_by(*newest_first)).mappings().all()
            found = [{k: aware(v) for k, v in row.items()} for row in rows]
            if found:
                wanted = sa.tuple_(renditions.c.video_id, renditions.c.version).in_(
                    [(v["id"], v["latest_version"]) for v in found])
                by_video: dict[str, list[dict[str, Any]]] = {}
                for row in conn.execute(sa.select(renditions).where(wanted).order_by(*RENDITION_ORDER)).mappings():
                    by_video.setdefault(row["video_id"], []).append({k: aware(v) for k, v in row.items()})
                for video in found:
                    video["renditions"] = by_video.get(video["id"], [])
        return found, total, estimated

    @reconnecting
    def begin_delete(self, video_id: str) -> bool:
        """Step 1 of a delete: under the row lock, mark the video ``deleting`` (refused while a run builds it).

        From then on no run can register it (``register`` stands down), so removing its media next can never
        leave a ``ready`` video pointing at deleted objects. Repeating it on a ``deleting`` video is fine: a
        delete that crashed half way is finished by deleting again. False when there is no such video."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(videos.c.status, videos.c.dag_run_id).where(videos.c.id == video_id)
                               .with_for_update()).first()
            if row is None:
                return False
            if row.status in ACTIVE_STATUSES:
                raise AlreadyActive(video_id, row.dag_run_id or "")
            if row.status != DELETING:
                conn.execute(videos.update().where(videos.c.id == video_id).values(status=DELETING, updated_at=now()))
                conn.execute(video_events.insert().values(video_id=video_id, at=now(), kind="status",
                                                          detail=json.dumps({"status": DELETING})))
            return True

    @reconnecting
    def delete_video(self, video_id: str) -> bool:
        """Remove a video's rows (renditions, versions, events cascade). Refused while a run is building it."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(videos.c.status).where(videos.c.id == video_id).with_for_update()).first()
            if row is None:
                return False
            if row.status in ACTIVE_STATUSES:
                raise AlreadyActive(video_id, "")
            published = sum(version_bytes(conn, video_id, v) for v in conn.execute(
                sa.select(video_versions.c.version).where(video_versions.c.video_id == video_id,
                                                          video_versions.c.status == VERSION_PUBLISHED)).scalars())
            for table in (renditions, version_outputs, early_segments, early_tracks, video_versions, video_events):
                conn.execute(table.delete().where(table.c.video_id == video_id))
            conn.execute(videos.delete().where(videos.c.id == video_id))
            add_published_bytes(conn, -published)
            return True

    @reconnecting
    def stats(self, since: datetime) -> dict[str, Any]:
        """Counts by status, what finished since ``since``, and the mean processing time of those that succeeded
        (added up by the database: a busy day's rows never travel)."""
        by_status = videos_by_status(self.engine)
        with self.engine.connect() as conn:
            took = _seconds_between(conn, videos.c.started_at, videos.c.finished_at)
            finished = {row.status: row for row in conn.execute(
                sa.select(videos.c.status, sa.func.count().label("n"), sa.func.avg(took).label("mean"))
                .where(videos.c.finished_at >= since, videos.c.status.in_((READY, FAILED)))
                .group_by(videos.c.status))}
        ready = finished.get(READY)
        return {"by_status": by_status,
                "completed_today": int(ready.n) if ready else 0,
                "failed_today": int(finished[FAILED].n) if FAILED in finished else 0,
                "average_processing_seconds": round(float(ready.mean), 1) if ready and ready.mean is not None
                else None,
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
            return {k: aware(v) for k, v in row.items()} if row else None

    @reconnecting
    def get_renditions(self, video_id: str, version: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(renditions).where(
                renditions.c.video_id == video_id, renditions.c.version == version
            ).order_by(*RENDITION_ORDER)).mappings().all()
            return [{k: aware(v) for k, v in row.items()} for row in rows]

    @reconnecting
    def get_outputs(self, video_id: str, version: int) -> list[dict[str, Any]]:
        """A version's published outputs, by kind then name."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(version_outputs).where(
                version_outputs.c.video_id == video_id, version_outputs.c.version == version
            ).order_by(version_outputs.c.kind, version_outputs.c.name)).mappings().all()
            return [dict(row) for row in rows]

    @reconnecting
    def get_versions(self, video_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(video_versions).where(video_versions.c.video_id == video_id)
                                .order_by(video_versions.c.version)).mappings().all()
            return [{k: aware(v) for k, v in row.items()} for row in rows]

    @reconnecting
    def get_events(self, video_id: str, after_id: int = 0, limit: int = 500) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(video_events).where(
                video_events.c.video_id == video_id, video_events.c.id > after_id
            ).order_by(video_events.c.id).limit(limit)).mappings().all()
            return [{**{k: aware(v) for k, v in row.items()},
                     "detail": json.loads(row["detail"]) if row["detail"] else {}} for row in rows]
