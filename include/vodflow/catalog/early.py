"""The catalog's side of early playback (``pipeline.early``): the segments of a building version's early tree,
each track's state, and the video's ``playable`` flag.

Every change to a version's early tree happens in an :class:`EarlySession`: one transaction holding a lock on the
version's row, so writers on several hosts take turns, and a version that is no longer building (failed,
discarded) gets nothing more. The caller renders and writes its playlists while it holds the session, so a
playlist object is never overwritten by an older rendering.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from vodflow.catalog.connection import dialect_insert, reconnecting
from vodflow.catalog.schema import (
    ACTIVE_STATUSES,
    VERSION_BUILDING,
    early_segments,
    early_tracks,
    now,
    video_events,
    video_versions,
    videos,
)

PLAYABLE = "playable"  # the history event of a video that became playable


@dataclass(frozen=True)
class TrackState:
    track: str
    last_seq: int | None  # None until the track's last segment is known
    listed: int  # segments its playlist lists: seq 0 .. listed - 1
    ended: bool  # its playlist has #EXT-X-ENDLIST


@dataclass(frozen=True)
class SegmentRow:
    seq: int
    uri: str
    duration: float


class EarlySession:
    """One locked transaction on a building version's early tree (``EarlyWrites.early_session``)."""

    def __init__(self, conn: Connection, video_id: str, version: int) -> None:
        self.conn, self.video_id, self.version = conn, video_id, version

    def _mine(self, table: sa.Table) -> sa.ColumnElement[bool]:
        return sa.and_(table.c.video_id == self.video_id, table.c.version == self.version)

    def open_tracks(self, tracks: Iterable[str]) -> bool:
        """The tree's tracks (insert-if-absent: every work item of the version opens the same tree); True when
        this session created them (the one that writes the master)."""
        rows = [{"video_id": self.video_id, "version": self.version, "track": t, "listed": 0, "ended": False}
                for t in tracks]
        if not rows:
            return False
        return bool(self.conn.execute(
            dialect_insert(self.conn)(early_tracks).values(rows).on_conflict_do_nothing()).rowcount)

    def insert(self, segments: Iterable[tuple[str, int, str, float]]) -> None:
        """(track, seq, uri, duration) rows; a seq already recorded keeps its row (a retry's is the same)."""
        rows = [{"video_id": self.video_id, "version": self.version, "track": track, "seq": seq, "uri": uri,
                 "duration": duration} for track, seq, uri, duration in segments]
        if rows:
            self.conn.execute(dialect_insert(self.conn)(early_segments).values(rows).on_conflict_do_nothing())

    def set_last(self, track: str, last_seq: int) -> None:
        self.conn.execute(early_tracks.update().where(self._mine(early_tracks), early_tracks.c.track == track)
                          .values(last_seq=last_seq))

    def tracks(self) -> dict[str, TrackState]:
        rows = self.conn.execute(sa.select(early_tracks).where(self._mine(early_tracks))).all()
        return {r.track: TrackState(r.track, r.last_seq, int(r.listed), bool(r.ended)) for r in rows}

    def segments(self, track: str) -> list[SegmentRow]:
        rows = self.conn.execute(sa.select(early_segments.c.seq, early_segments.c.uri, early_segments.c.duration)
                                 .where(self._mine(early_segments), early_segments.c.track == track)
                                 .order_by(early_segments.c.seq)).all()
        return [SegmentRow(int(r.seq), r.uri, float(r.duration)) for r in rows]

    def mark_listed(self, track: str, listed: int, ended: bool) -> None:
        self.conn.execute(early_tracks.update().where(self._mine(early_tracks), early_tracks.c.track == track)
                          .values(listed=listed, ended=ended))

    def mark_playable(self, url: str | None) -> bool:
        """The video is playable on this version, if it has no published version yet (a re-run's early tree is an
        operator's preview, never what viewers see) and is not playable already: True the one time it becomes so."""
        stamp = now()
        result = self.conn.execute(videos.update().where(
            videos.c.id == self.video_id, videos.c.latest_version == self.version,
            videos.c.current_version.is_(None), videos.c.playable_version.is_(None),
            videos.c.status.in_(ACTIVE_STATUSES)).values(playable_version=self.version, playable_at=stamp,
                                                         updated_at=stamp))
        if not result.rowcount:
            return False
        self.conn.execute(video_events.insert().values(
            video_id=self.video_id, at=stamp, kind=PLAYABLE,
            detail=json.dumps({"version": self.version, "url": url})))
        return True


def drop_early(conn: Connection, video_id: str, version: int) -> None:
    """A version that will never be published loses its early rows, and the video its playable flag on it."""
    for table in (early_segments, early_tracks):
        conn.execute(table.delete().where(table.c.video_id == video_id, table.c.version == version))
    conn.execute(videos.update().where(videos.c.id == video_id, videos.c.playable_version == version)
                 .values(playable_version=None, playable_at=None))


class EarlyWrites:
    """The early tree's writes and reads (mixed into ``Catalog``)."""

    engine: Engine

    @contextmanager
    def early_session(self, video_id: str, version: int) -> Iterator[EarlySession | None]:
        """A transaction holding the version's row lock; None (nothing written) when the version is not building.
        The lock is a no-op update of the row: Postgres locks the row, SQLite takes its one write lock."""
        with self.engine.begin() as conn:
            locked = conn.execute(video_versions.update().where(
                video_versions.c.video_id == video_id, video_versions.c.version == version,
                video_versions.c.status == VERSION_BUILDING).values(status=video_versions.c.status))
            yield EarlySession(conn, video_id, version) if locked.rowcount else None

    @reconnecting
    def early_tracks_of(self, video_id: str, version: int) -> dict[str, TrackState]:
        """A version's early tracks (empty: it has no early tree)."""
        with self.engine.connect() as conn:
            return EarlySession(conn, video_id, version).tracks()

    @reconnecting
    def drop_early(self, video_id: str, version: int) -> None:
        with self.engine.begin() as conn:
            drop_early(conn, video_id, version)
