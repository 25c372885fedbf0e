"""The catalog at a million videos (issue 25, 4b): indexes for every operator query, and ``metric_totals``, the
totals the metrics would otherwise add up from all of history on each scrape.

Indexes (``ix_videos_status`` stays: the active videos, SQLite's counts): the list's order (``created_at``, ``id``)
alone and after a status, a run's video (``dag_run_id``), what finished today (``finished_at``), failures by code
(``error_code``), a run's version (``video_versions.dag_run_id``: the queue's facts about runs in flight); on
Postgres with ``pg_trgm`` (``CREATE EXTENSION`` needs the right; without it the search stays a scan, and works)
trigram indexes for the search's ``lower(title) LIKE '%…%'`` and ``lower(id) LIKE '%…%'``.

``video_status_deltas`` (Postgres: kept by triggers on ``videos``): the counts by status, as a sum of a few rows.
``metric_totals`` (name, label, le → value): ``published_bytes`` (kept by publish, prune and delete), and the encode
histograms folded from the ``encoded`` events up to event ``encoded_through`` (newer events are added at scrape
time). Both are filled here from the rows already there.

Revision ID: 0009
Revises: 0008 (another branch has a 0009 too: re-chain this one after it when both are merged)
"""

import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# As vodflow.catalog.metrics has them at this revision (spelled out: a revision never imports the package).
ENCODE_SECONDS_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
REALTIME_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32)
FOLD_AFTER = timedelta(minutes=5)
TRIGRAM_INDEXES = {"ix_videos_title_trgm": "lower(title)", "ix_videos_id_trgm": "lower(id)"}


def upgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.drop_index("ix_videos_created_at")  # ix_videos_created_id leads with it
        batch.create_index("ix_videos_created_id", ["created_at", "id"])
        batch.create_index("ix_videos_status_created_id", ["status", "created_at", "id"])
        batch.create_index("ix_videos_dag_run_id", ["dag_run_id"])
        batch.create_index("ix_videos_finished_at", ["finished_at"])
        batch.create_index("ix_videos_error_code", ["error_code"])
    with op.batch_alter_table("video_versions") as batch:  # the queue's facts about runs in flight
        batch.create_index("ix_video_versions_dag_run_id", ["dag_run_id"])
    totals = op.create_table(
        "metric_totals",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("label", sa.String(64), primary_key=True),
        sa.Column("le", sa.String(16), primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
    )
    op.create_table(
        "video_status_deltas",
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("n", sa.BigInteger, nullable=False),
    )
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        _trigram_indexes(conn)
        for statement in STATUS_TRIGGERS:
            conn.exec_driver_sql(statement)
        conn.exec_driver_sql("INSERT INTO video_status_deltas (status, n) SELECT status, count(*) FROM videos "
                             "GROUP BY status")
    published = conn.execute(sa.text(
        "SELECT coalesce(sum(r.bytes), 0) FROM renditions r JOIN video_versions v "
        "ON v.video_id = r.video_id AND v.version = r.version WHERE v.status = 'published'")).scalar()
    rows = {("published_bytes", "", ""): float(published or 0)}
    rows.update(_folded_encodes(conn))
    op.bulk_insert(totals, [{"name": n, "label": label, "le": le, "value": v} for (n, label, le), v in rows.items()])


# Postgres: every change of a video's status appends (status, ±n) rows to video_status_deltas, so the counts by
# status are a sum over a few rows (the readers compact them), not a count over every video. Appending takes no
# lock that another writer waits for. Statement triggers with transition tables: one per event.
STATUS_TRIGGERS = (
    """CREATE FUNCTION vodflow_video_status_deltas() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO video_status_deltas (status, n) SELECT status, count(*) FROM new_rows GROUP BY status;
        ELSIF TG_OP = 'DELETE' THEN
            INSERT INTO video_status_deltas (status, n) SELECT status, -count(*) FROM old_rows GROUP BY status;
        ELSE
            INSERT INTO video_status_deltas (status, n)
            SELECT status, sum(n) FROM (
                SELECT o.status, -1 AS n FROM old_rows o JOIN new_rows w ON w.id = o.id WHERE w.status <> o.status
                UNION ALL
                SELECT w.status, 1 FROM old_rows o JOIN new_rows w ON w.id = o.id WHERE w.status <> o.status
            ) AS moved GROUP BY status;
        END IF;
        RETURN NULL;
    END $$""",
    "CREATE TRIGGER vodflow_status_insert AFTER INSERT ON videos REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION vodflow_video_status_deltas()",
    "CREATE TRIGGER vodflow_status_update AFTER UPDATE ON videos REFERENCING OLD TABLE AS old_rows "
    "NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION vodflow_video_status_deltas()",
    "CREATE TRIGGER vodflow_status_delete AFTER DELETE ON videos REFERENCING OLD TABLE AS old_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION vodflow_video_status_deltas()",
)


def _trigram_indexes(conn: sa.Connection) -> None:
    """In a savepoint: a database user who may not create the extension keeps a working (unindexed) search."""
    try:
        with conn.begin_nested():
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except sa.exc.DBAPIError as exc:
        print(f"pg_trgm not available ({str(exc.orig).strip().splitlines()[0]}): search is not indexed")
        return
    for name, expression in TRIGRAM_INDEXES.items():
        conn.exec_driver_sql(f"CREATE INDEX {name} ON videos USING gin ({expression} gin_trgm_ops)")


def _folded_encodes(conn: sa.Connection) -> dict[tuple[str, str, str], float]:
    """The encode histograms of every ``encoded`` event older than FOLD_AFTER (cumulative bucket counts)."""
    cutoff = datetime.now(UTC) - FOLD_AFTER
    through = conn.execute(sa.text("SELECT max(id) FROM video_events WHERE at < :cutoff").bindparams(
        sa.bindparam("cutoff", cutoff, type_=sa.DateTime(timezone=True)))).scalar() or 0
    totals: dict[tuple[str, str, str], float] = {("encoded_through", "", ""): float(through)}

    def add(key: tuple[str, str, str], amount: float) -> None:
        totals[key] = totals.get(key, 0.0) + amount

    result = conn.execute(sa.text("SELECT detail FROM video_events WHERE kind = 'encoded' AND id <= :through")
                          .execution_options(yield_per=10_000), {"through": through})
    for (detail,) in result:
        data = json.loads(detail or "{}")
        if not data.get("seconds"):
            continue
        rendition, seconds, factor = str(data.get("rendition")), float(data["seconds"]), data.get("realtime_factor")
        add(("encoded_bytes", "", ""), int(data.get("bytes") or 0))
        for name, value, buckets in (("encode_seconds", seconds, ENCODE_SECONDS_BUCKETS),
                                     ("encode_realtime_factor", factor, REALTIME_BUCKETS)):
            if not value:
                continue
            add((f"{name}_sum", rendition, ""), value)
            add((name, rendition, "+Inf"), 1)
            for bucket in buckets:
                if value <= bucket:
                    add((name, rendition, str(float(bucket))), 1)
    return totals


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        for name in TRIGRAM_INDEXES:
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
        for event in ("insert", "update", "delete"):
            conn.exec_driver_sql(f"DROP TRIGGER vodflow_status_{event} ON videos")
        conn.exec_driver_sql("DROP FUNCTION vodflow_video_status_deltas()")
    op.drop_table("video_status_deltas")
    op.drop_table("metric_totals")
    with op.batch_alter_table("video_versions") as batch:
        batch.drop_index("ix_video_versions_dag_run_id")
    with op.batch_alter_table("videos") as batch:
        for name in ("ix_videos_error_code", "ix_videos_finished_at", "ix_videos_dag_run_id",
                     "ix_videos_status_created_id", "ix_videos_created_id"):
            batch.drop_index(name)
        batch.create_index("ix_videos_created_at", ["created_at"])
