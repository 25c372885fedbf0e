"""The catalog's schema migrations: Alembic revisions in ``versions/``, run by ``Catalog.migrate``.

Configured in code (no alembic.ini): ``script_location`` is this folder and the caller's connection is handed to
``env.py`` in ``config.attributes["connection"]``, so a migration runs inside the caller's transaction.

Revision ids are the schema version numbers, zero-padded (``0001``, ``0002``, …), in one line: the number is what
``Catalog.schema_version()`` reports. A released revision is never edited: it spells its tables and columns out
(``op.create_table``, ``op.add_column``) instead of reading ``vodflow.catalog``'s current definitions. A schema
change is a new ``versions/NNNN_<what>.py`` with ``down_revision`` the previous number, ``op.batch_alter_table``
for ALTERs (SQLite), and ``HEAD`` bumped; tests/integration/test_catalog_migrations.py checks that the migrated
database matches ``vodflow.catalog.metadata``.

Before Alembic the catalog kept its version in ``vodflow_schema_version`` (one row per applied migration, hand-rolled
migrations 1–3). A database that has that table but no Alembic version is stamped at the revision of its highest
row on first migrate, then upgraded: 1, 2 and 3 are exactly what revisions 0001–0003 create. The table is still
written after each upgrade (one row per version), so a release from before Alembic sees a schema it knows.
"""

from __future__ import annotations

import logging
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

HEAD = 10  # the newest revision's number (versions/0010_*.py): the schema this code reads and writes
# Not Alembic's default `alembic_version`: the catalog may share a database with Airflow's own (Alembic) tables.
VERSION_TABLE = "vodflow_alembic_version"
_ADVISORY_LOCK_ID = 0x766F64666C6F77  # "vodflow"; the same lock the hand-rolled migrations took

legacy_versions = sa.Table(  # the version table before Alembic; kept in step (see above)
    "vodflow_schema_version", sa.MetaData(),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)
_version_num = sa.table(VERSION_TABLE, sa.column("version_num", sa.String))


def revision_id(number: int) -> str:
    return f"{number:04d}"


def config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for the catalog: this folder's scripts, migrating ``connection``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).resolve().parent).replace("%", "%%"))
    cfg.attributes["connection"] = connection
    return cfg


def current_version(conn: Connection, *, before_alembic: bool = True) -> int:
    """The database's schema version: its Alembic revision's number, else (``before_alembic``) the pre-Alembic
    table's, else 0."""
    inspector = sa.inspect(conn)
    if inspector.has_table(VERSION_TABLE):
        found = conn.execute(sa.select(_version_num.c.version_num)).scalar()
        return int(found) if found else 0
    if before_alembic and inspector.has_table(legacy_versions.name):
        return int(conn.execute(sa.select(sa.func.max(legacy_versions.c.version))).scalar() or 0)
    return 0


def upgrade(engine: Engine) -> None:
    """Stamp a pre-Alembic database, upgrade to head and record the version, in one transaction.

    Safe from many processes at once: on Postgres the migrators queue on an advisory lock (and the DDL is
    transactional), on SQLite on the database's one write lock (``BEGIN IMMEDIATE``); whoever comes second finds
    the schema at head and does nothing.
    """
    with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK_ID})
                _upgrade(conn)
            return
        # pysqlite opens a transaction only before DML, so DDL would commit one statement at a time: take the write
        # lock first, then everything runs in that transaction. Foreign keys are off while a batch migration
        # rebuilds a table (dropping the old copy would otherwise cascade to the rows referencing it); SQLite
        # ignores that pragma inside a transaction.
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        conn.commit()
        try:
            for attempt in range(20):
                try:
                    with conn.begin():
                        conn.exec_driver_sql("BEGIN IMMEDIATE")
                        _upgrade(conn)
                    break
                except sa.exc.OperationalError as exc:
                    # SQLite answers "locked" at once, not after its busy timeout, where waiting could deadlock
                    # (another migrator holds the lock this one needs next): the upgrade rolled back; start over.
                    if "locked" not in str(exc) or attempt == 19:
                        raise
                    log.info("Catalog database locked by another migrator; trying again")
                    time.sleep(random.uniform(0.1, 0.5))
        finally:
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            conn.commit()


def _upgrade(conn: Connection) -> None:
    from alembic import command

    cfg = config(conn)
    inspector = sa.inspect(conn)
    if not inspector.has_table(VERSION_TABLE) and inspector.has_table(legacy_versions.name):
        legacy = int(conn.execute(sa.select(sa.func.max(legacy_versions.c.version))).scalar() or 0)
        if legacy:
            log.info("Catalog at schema version %d (vodflow_schema_version): stamping Alembic revision %s",
                     legacy, revision_id(legacy))
            command.stamp(cfg, revision_id(legacy))
    command.upgrade(cfg, "head")
    number = current_version(conn)
    legacy_versions.create(conn, checkfirst=True)
    recorded = int(conn.execute(sa.select(sa.func.max(legacy_versions.c.version))).scalar() or 0)
    if number > recorded:
        stamp = datetime.now(UTC)
        conn.execute(legacy_versions.insert(), [{"version": v, "applied_at": stamp}
                                                for v in range(recorded + 1, number + 1)])
