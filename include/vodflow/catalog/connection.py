"""Reaching the catalog database: engines from Airflow connections, and riding out a lost connection."""

from __future__ import annotations

import functools
import logging
import random
import sqlite3
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


def dialect_insert(conn: Connection) -> Callable[..., Any]:
    """The dialect's ``insert`` (Postgres or SQLite), for its ``ON CONFLICT`` clauses."""
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


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
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            # Switching a new database to WAL needs it to itself, and SQLite answers "locked" at once instead of
            # waiting while another connection is writing (processes starting together): try again shortly.
            for attempt in range(50):
                try:
                    cursor.execute("PRAGMA journal_mode=WAL")
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or attempt == 49:
                        raise
                    time.sleep(random.uniform(0.05, 0.2))
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=4, pool_recycle=1800)
