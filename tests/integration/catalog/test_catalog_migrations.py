"""Catalog migrations (Alembic) on Postgres and SQLite: a new database, catalogs left by the releases before
Alembic (built here as those releases built them) stamped and upgraded, migrators racing, `vodflow db migrate`."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from tests.conftest import airflow_connection_json, create_test_database, drop_test_database
from vodflow.catalog import OPTIONAL_INDEXES, SCHEMA_VERSION, Catalog, RenditionPlan, make_engine, metadata, uploads
from vodflow.catalog import migrations as catalog_migrations
from vodflow.catalog.migrations import VERSION_TABLE, legacy_versions, revision_id

pytestmark = pytest.mark.integration
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

# --- The catalog as the releases before Alembic built it ----------------------------------------------------------
# Release 1's tables, as its `_migration_1` created them (`metadata.create_all` of these definitions; frozen from
# `git show 1c2efe4:include/vodflow/catalog.py`). Releases 2 and 3 ran their migrations on top (below).
_V1 = sa.MetaData()
_v1_videos = sa.Table(
    "videos", _V1,
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
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
)
_v1_video_versions = sa.Table(
    "video_versions", _V1,
    sa.Column("video_id", sa.String(64), sa.ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("dag_run_id", sa.String(250), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("ladder_version", sa.Integer),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("video_id", "dag_run_id", name="uq_video_versions_run"),
)
_v1_renditions = sa.Table(
    "renditions", _V1,
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
_v1_video_events = sa.Table(
    "video_events", _V1,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("video_id", sa.String(64), sa.ForeignKey("videos.id", ondelete="CASCADE"), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text),
)
sa.Index("ix_videos_status", _v1_videos.c.status)
sa.Index("ix_videos_created_at", _v1_videos.c.created_at)
sa.Index("ix_video_events_video_id", _v1_video_events.c.video_id, _v1_video_events.c.id)
# Release 2's `uploads` (its `_migration_2` created it with `uploads.create`).
_v2_uploads = sa.Table(
    "uploads", sa.MetaData(),
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
    sa.Index("ix_uploads_last_modified", "last_modified"),
)


def _release_2_migration(conn: Connection) -> None:
    """Release 2's `_migration_2` on a release 1 catalog (its "add only what is missing" checks all pass there)."""
    kind = "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME"
    conn.execute(sa.text(f"ALTER TABLE videos ADD COLUMN source_uploaded_at {kind}"))
    _v2_uploads.create(conn)
    conn.execute(sa.text("CREATE INDEX ix_videos_source_uploaded_at ON videos (source_uploaded_at)"))
    conn.execute(sa.text("CREATE INDEX ix_videos_source ON videos (source_uri, source_etag)"))


def _release_3_migration(conn: Connection) -> None:
    """Release 3's `_migration_3` on a release 2 catalog."""
    conn.execute(sa.text("ALTER TABLE videos ADD COLUMN request TEXT"))


def build_release_catalog(engine: Engine, release: int) -> None:
    """An empty catalog as release 1, 2 or 3 (hand-rolled migrations, `vodflow_schema_version`) left it."""
    steps = [lambda conn: _V1.create_all(conn), _release_2_migration, _release_3_migration][:release]
    with engine.begin() as conn:
        legacy_versions.create(conn)
        for number, step in enumerate(steps, start=1):
            step(conn)
            conn.execute(legacy_versions.insert().values(version=number, applied_at=T0))


OLD_VIDEO = {"id": "old", "source_uri": "s3://vodflow/uploads/old.mp4", "source_etag": "e0", "source_size": 1234,
             "title": "Old one ✓", "status": "ready", "duration": 12.5, "width": 1280, "height": 720, "fps": 30.0,
             "has_audio": True, "video_codec": "h264", "audio_codec": "aac", "ladder_version": 1,
             "current_version": 1, "latest_version": 1, "master_uri": "s3://vodflow/hls/old/v1/master.m3u8",
             "dag_run_id": "upload__old", "created_at": T0, "updated_at": T0, "started_at": T0, "finished_at": T0}


def add_old_video(engine: Engine) -> None:
    """A published video with its version, rendition and history, written with release 1's columns."""
    with engine.begin() as conn:
        conn.execute(_v1_videos.insert().values(**OLD_VIDEO))
        conn.execute(_v1_video_versions.insert().values(video_id="old", version=1, dag_run_id="upload__old",
                                                        status="published", ladder_version=1, created_at=T0,
                                                        published_at=T0))
        conn.execute(_v1_renditions.insert().values(video_id="old", version=1, name="720p", width=1280, height=720,
                                                    video_kbps=3000, audio_kbps=128, status="done", progress=100.0,
                                                    updated_at=T0))
        conn.execute(_v1_video_events.insert().values(video_id="old", at=T0, kind="status",
                                                      detail=json.dumps({"status": "ready"})))


def add_old_upload(engine: Engine) -> None:
    """The watcher's claim of the old video's upload, written with release 2's columns."""
    with engine.begin() as conn:
        conn.execute(_v2_uploads.insert().values(bucket="vodflow", key="uploads/old.mp4", etag="e0", size=1234,
                                                 last_modified=T0, video_id="old", dag_run_id="upload__old",
                                                 state="triggered", claimed_at=T0, triggered_at=T0))


# --- Helpers --------------------------------------------------------------------------------------------------------
@pytest.fixture(params=["postgres", "sqlite"])
def url(request, tmp_path) -> Iterator[str]:
    """An empty database of the test's own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    name = f"vodflow_mig_{uuid.uuid4().hex[:10]}"
    try:
        yield create_test_database(name)
    finally:
        drop_test_database(name)


@pytest.fixture
def engine(url) -> Iterator[Engine]:
    engine = make_engine(url)
    yield engine
    engine.dispose()


def included(name: str | None, type_: str, _parents: dict) -> bool:
    """Not the version table from before Alembic, nor the optional Postgres-only (trigram) indexes."""
    return not ((type_ == "table" and name == legacy_versions.name) or (type_ == "index" and name in OPTIONAL_INDEXES))


def schema_differences(engine: Engine) -> list:
    """What Alembic's autogenerate would change to make the database match ``vodflow.catalog.metadata``."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "version_table": VERSION_TABLE, "compare_type": True, "compare_server_default": True,
            "include_name": included})
        return compare_metadata(context, metadata)


def alembic_revision(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())


def legacy_rows(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(legacy_versions.c.version).order_by(legacy_versions.c.version)).scalars())


def upgrades_run(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [m.group(1) for r in caplog.records
            if (m := re.match(r"Running upgrade (\S* -> [^\s,]+)", r.getMessage()))]


def migrate_all_at_once(engines: list[Engine]) -> list[BaseException]:
    failures: list[BaseException] = []
    start = threading.Barrier(len(engines))

    def run(engine: Engine) -> None:
        try:
            start.wait()
            Catalog(engine).migrate()
        except BaseException as exc:  # collected and asserted by the caller
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return failures


# --- Tests ----------------------------------------------------------------------------------------------------------
def test_the_revisions_are_one_numbered_line_ending_at_schema_version():
    script = ScriptDirectory.from_config(catalog_migrations.config())
    revisions = list(reversed(list(script.walk_revisions())))
    assert [r.revision for r in revisions] == [revision_id(n) for n in range(1, SCHEMA_VERSION + 1)]
    assert [r.down_revision for r in revisions] == [None, *(revision_id(n) for n in range(1, SCHEMA_VERSION))]
    assert script.get_heads() == [revision_id(SCHEMA_VERSION)]
    for r in revisions:
        assert Path(r.path).name.startswith(f"{r.revision}_"), r.path
        text = Path(r.path).read_text()
        assert "import vodflow" not in text and "from vodflow" not in text, f"{r.path}: spell the schema out"


def test_a_new_database_migrates_to_head_and_matches_the_metadata(engine, caplog):
    caplog.set_level(logging.INFO, logger="alembic")
    catalog = Catalog(engine)
    assert catalog.schema_version() == 0
    assert catalog.migrate() == SCHEMA_VERSION
    assert upgrades_run(caplog) == [" -> 0001", "0001 -> 0002", "0002 -> 0003", "0003 -> 0004", "0004 -> 0005",
                                   "0005 -> 0006", "0006 -> 0007", "0007 -> 0008", "0008 -> 0009",
                                   "0009 -> 0010"]
    assert catalog.schema_version() == SCHEMA_VERSION
    assert alembic_revision(engine) == [revision_id(SCHEMA_VERSION)]
    assert legacy_rows(engine) == list(range(1, SCHEMA_VERSION + 1))  # what a release before Alembic reads
    assert schema_differences(engine) == []
    caplog.clear()
    assert catalog.migrate() == SCHEMA_VERSION  # idempotent, and nothing runs
    assert upgrades_run(caplog) == []
    # The migrated catalog works: a run registers, plans and keeps its request.
    version = catalog.register(video_id="new", source_uri="s3://vodflow/uploads/new.mp4", etag="e1", size=10,
                               title="New", run_id="upload__new", ladder_version=2, uploaded_at=T0,
                               request={"source": "s3://vodflow/uploads/new.mp4"})
    catalog.plan_renditions("new", "upload__new", version, [RenditionPlan("360p", 640, 360, 800, 96, 30.0)])
    assert catalog.get_video("new")["source_uploaded_at"] == T0
    assert json.loads(catalog.get_video("new")["request"]) == {"source": "s3://vodflow/uploads/new.mp4"}


@pytest.mark.parametrize(("release", "expected"), [
    (1, ["0001 -> 0002", "0002 -> 0003", "0003 -> 0004", "0004 -> 0005", "0005 -> 0006", "0006 -> 0007",
         "0007 -> 0008", "0008 -> 0009", "0009 -> 0010"]),
    (2, ["0002 -> 0003", "0003 -> 0004", "0004 -> 0005", "0005 -> 0006", "0006 -> 0007", "0007 -> 0008",
         "0008 -> 0009", "0009 -> 0010"]),
    (3, ["0003 -> 0004", "0004 -> 0005", "0005 -> 0006", "0006 -> 0007", "0007 -> 0008", "0008 -> 0009",
         "0009 -> 0010"]),
])
def test_a_catalog_from_before_alembic_is_stamped_and_upgraded_with_its_rows(engine, caplog, release, expected):
    build_release_catalog(engine, release)
    add_old_video(engine)
    if release >= 2:
        add_old_upload(engine)
    catalog = Catalog(engine)
    assert catalog.schema_version() == release  # read from vodflow_schema_version
    caplog.set_level(logging.INFO, logger="alembic")
    assert catalog.migrate() == SCHEMA_VERSION
    assert upgrades_run(caplog) == expected  # what the release had is not run again
    assert alembic_revision(engine) == [revision_id(SCHEMA_VERSION)]
    assert catalog.schema_version() == SCHEMA_VERSION
    assert legacy_rows(engine) == list(range(1, SCHEMA_VERSION + 1))
    assert schema_differences(engine) == []
    old = catalog.get_video("old")
    assert {k: old[k] for k in OLD_VIDEO} == OLD_VIDEO
    assert old["source_uploaded_at"] is None and old["request"] is None  # the new columns, empty
    assert [(r["name"], r["codec"], r["dynamic_range"]) for r in catalog.get_renditions("old", 1)] == [
        ("720p", "h264", "SDR")]  # every rendition from before is H.264 in SDR
    assert [v["status"] for v in catalog.get_versions("old")] == ["published"]
    assert [e["detail"] for e in catalog.get_events("old")] == [{"status": "ready"}]
    if release >= 2:  # the watcher's claim kept, with no conf (only the checked trigger writes one)
        with engine.connect() as conn:
            assert conn.execute(sa.select(uploads.c.state, uploads.c.conf)).all() == [("triggered", None)]
    caplog.clear()
    assert catalog.migrate() == SCHEMA_VERSION
    assert upgrades_run(caplog) == []
    # A new run of the old video uses the new columns.
    version = catalog.register(video_id="old", source_uri=OLD_VIDEO["source_uri"], etag="e0", size=1234,
                               title=None, run_id="retry__old", ladder_version=2, uploaded_at=T0,
                               request={"source": OLD_VIDEO["source_uri"], "video_id": "old"})
    assert version == 2
    assert json.loads(catalog.get_video("old")["request"]) == {"source": OLD_VIDEO["source_uri"], "video_id": "old"}


@pytest.mark.parametrize("release", [0, 1])
def test_concurrent_migrates_do_not_fail(url, release):
    """Workers starting at once on an empty or a release 1 catalog: one migrates, the others find it done."""
    engines = [make_engine(url) for _ in range(4)]
    try:
        if release:
            build_release_catalog(engines[0], release)
            add_old_video(engines[0])
        assert migrate_all_at_once(engines) == []
        assert alembic_revision(engines[0]) == [revision_id(SCHEMA_VERSION)]
        assert legacy_rows(engines[0]) == list(range(1, SCHEMA_VERSION + 1))
        if release:
            assert Catalog(engines[0]).get_video("old")["title"] == OLD_VIDEO["title"]
    finally:
        for e in engines:
            e.dispose()


def test_every_revision_downgrades_and_upgrades_again(engine):
    Catalog(engine).migrate()
    with engine.begin() as conn:
        command.downgrade(catalog_migrations.config(conn), "base")
    assert set(sa.inspect(engine).get_table_names()) == {VERSION_TABLE, legacy_versions.name}
    with engine.begin() as conn:
        command.upgrade(catalog_migrations.config(conn), "head")
    assert alembic_revision(engine) == [revision_id(SCHEMA_VERSION)]
    assert schema_differences(engine) == []


def test_vodflow_db_migrate_upgrades_and_prints_the_revision(engine, url, tmp_path):
    build_release_catalog(engine, 2)
    env = {**os.environ, "AIRFLOW_CONN_VODFLOW_CATALOG": airflow_connection_json(url),
           "AIRFLOW_HOME": str(tmp_path / "airflow")}
    result = subprocess.run([sys.executable, "-m", "vodflow.cli", "db", "migrate"],
                            env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[-1] == f"catalog schema at revision {revision_id(SCHEMA_VERSION)}"
    assert "Running upgrade 0002 -> 0003" in result.stdout + result.stderr  # (Airflow logs to stdout)
    assert alembic_revision(engine) == [revision_id(SCHEMA_VERSION)]
