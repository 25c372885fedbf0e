"""Throw-away Postgres databases on a local server (the tests' and benches' Airflow and catalog databases)."""

from __future__ import annotations

import sqlalchemy as sa


def create_database(admin_url: str, name: str, exist_ok: bool = False) -> str:
    """CREATE DATABASE ``name`` on the server of ``admin_url``; returns the new database's URL."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            if exists and not exist_ok:
                raise RuntimeError(f"database {name} already exists")
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, name: str) -> None:
    """Drop a database we created, disconnecting whoever still uses it."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                         {"n": name})
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    finally:
        admin.dispose()
