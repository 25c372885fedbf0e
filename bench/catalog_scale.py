"""The catalog at scale (issue 25, 4b): a Postgres catalog of its own seeded with N videos (default 1,000,000, with
their versions, renditions, outputs and events; vodflow.devtools.catalog_seed), the real vodflow FastAPI app served by
uvicorn over HTTP against it (Airflow's SimpleAuthManager, a real JWT), and per operator endpoint p50/p95/max of
``--requests`` sequential requests; then ``EXPLAIN (ANALYZE, BUFFERS)`` of every catalog query those requests ran
(captured from SQLAlchemy's ``before_cursor_execute``), with any Seq Scan on a big table flagged; and the catalog
side of one upload (the pipeline's writes, register to publish) timed against the seeded catalog.

    .venv/bin/python bench/catalog_scale.py [--videos 1000000] [--requests 50] [--keep] [--db NAME] [--plans]

``--db NAME``: use (and keep) that database, seeding it only if it is empty, e.g. to measure again after a
migration on the same rows. Exit status 1 when an endpoint's p95 is over ``--p95-limit`` ms (200).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from typing import Any

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="vodflow-scale-airflow-"))
import httpx
import sqlalchemy as sa

from vodflow.catalog import Catalog, RenditionPlan, VariantRecord, make_engine, videos
from vodflow.devtools.catalog_seed import RARE_WORD, RENDITIONS, seed
from vodflow.devtools.databases import create_database, drop_database

ADMIN_URL = os.environ.get("VODFLOW_BENCH_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
BIG_TABLES = ("videos", "renditions", "video_events", "video_versions", "version_outputs")
JWT_SECRET = "vodflow-scale-bench-" + "0123456789abcdef" * 3
METRICS_TOKEN = "scale-bench"
SCAN = re.compile(r"((?:Parallel )?(?:Seq|Index|Index Only|Bitmap Heap|Bitmap Index) Scan(?: Backward)?"
                  r"(?: using \S+)? on \S+)")


class Captured:
    """Catalog statements (Postgres) by endpoint label: the first parameters each distinct statement ran with."""

    def __init__(self) -> None:
        self.label: str | None = None
        self.seen: dict[str, dict[str, Any]] = {}

    def __call__(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if (self.label and conn.dialect.name == "postgresql" and statement.lstrip().upper().startswith("SELECT")
                and "pg_catalog" not in statement and "alembic_version" not in statement):
            self.seen.setdefault(self.label, {}).setdefault(statement, parameters)


def configure(url: str) -> dict[str, str]:
    parsed = sa.make_url(url)
    env = {"AIRFLOW_CONN_VODFLOW_CATALOG": json.dumps({
               "conn_type": "postgres", "host": parsed.host, "port": parsed.port or 5432, "login": parsed.username,
               "password": parsed.password or "", "schema": parsed.database}),
           "AIRFLOW__VODFLOW__METRICS_TOKEN": METRICS_TOKEN, "AIRFLOW__VODFLOW__BUCKET": "vodflow",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin", "AIRFLOW__API_AUTH__JWT_SECRET": JWT_SECRET}
    os.environ.update(env)
    return env


def add_runs(engine: sa.Engine, run_ids: list[str]) -> None:
    """The active videos' runs in Airflow's metadata DB, so the list's queue line looks them up in the catalog."""
    from airflow.models.dagrun import DagRun

    stamp = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(DagRun.__table__.delete().where(DagRun.__table__.c.dag_id == "transcode_video"))
        if run_ids:
            conn.execute(sa.insert(DagRun.__table__), [
                {"dag_id": "transcode_video", "run_id": run_id, "run_type": "manual", "state": "running",
                 "triggering_user_name": "admin", "run_after": stamp, "queued_at": stamp,
                 "data_interval_start": None, "data_interval_end": None} for run_id in run_ids])


def serve(active_runs: list[str]) -> tuple[str, str, Any]:
    """vodflow's app under uvicorn in a thread (Airflow's metadata DB holding ``active_runs``); returns its base
    URL, an admin's bearer token and the server."""
    import uvicorn
    from airflow import settings
    from airflow.api_fastapi import app as airflow_app
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.models import import_all_models
    from airflow.models.base import Base

    import_all_models()
    Base.metadata.create_all(settings.engine)  # Airflow's metadata DB (SQLite here): the stats read its queue
    add_runs(settings.engine, active_runs)
    manager = airflow_app.init_auth_manager()
    token = manager.generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))
    from vodflow.web.api import app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", token, server


def endpoints(catalog: Catalog) -> dict[str, tuple[str, dict[str, Any]]]:
    with catalog.engine.connect() as conn:
        total = conn.execute(sa.text("SELECT reltuples::bigint FROM pg_class WHERE relname = 'videos'")).scalar()
        newest = conn.execute(sa.select(videos.c.id, videos.c.dag_run_id).where(  # a seeded one, not a bench upload
            videos.c.status == "ready", videos.c.id.not_like("vid\\_bench%", escape="\\"))
            .order_by(videos.c.created_at.desc()).limit(1)).first()
        middle = conn.execute(sa.select(videos.c.id).order_by(videos.c.created_at.desc(), videos.c.id.desc())
                              .offset(max(int(total) // 2, 0)).limit(1)).scalar()
    return {
        "list first page": ("/api/videos", {}),
        "list deep page": ("/api/videos", {"offset": max(int(total) // 2, 0)}),
        "list deep page by keyset": ("/api/videos", {"after": middle}),
        "list status=failed": ("/api/videos", {"status": "failed"}),
        "list status=ready p3": ("/api/videos", {"status": "ready", "offset": 100}),
        "search title word": ("/api/videos", {"q": "sunset"}),
        f"search rare word ({RARE_WORD})": ("/api/videos", {"q": RARE_WORD}),
        "search id prefix": ("/api/videos", {"q": newest.id[:9]}),
        "list run_id": ("/api/videos", {"run_id": newest.dag_run_id}),
        "video": (f"/api/videos/{newest.id}", {}),
        "stats": ("/api/stats", {}),
        "metrics": ("/metrics", {}),
        "events (SSE, first snapshot)": (f"/api/videos/{newest.id}/events", {}),
    }


def measure(base: str, token: str, targets: dict[str, tuple[str, dict[str, Any]]], requests: int, budget: float,
            captured: Captured) -> dict[str, list[float]]:
    """Sequential requests per endpoint (one warm-up first): at least 10, up to ``requests`` within ``budget`` s."""
    timings: dict[str, list[float]] = {}
    with httpx.Client(base_url=base, timeout=300) as client:
        for label, (path, params) in targets.items():
            headers = {"Authorization": f"Bearer {METRICS_TOKEN if path == '/metrics' else token}"}
            captured.label = label
            first = client.get(path, params=params, headers=headers)
            assert first.status_code == 200, (label, first.status_code, first.text[:300])
            captured.label = None
            spent, times = time.monotonic(), []
            while len(times) < requests and (len(times) < 10 or time.monotonic() - spent < budget):
                t0 = time.perf_counter()
                answer = client.get(path, params=params, headers=headers)
                times.append((time.perf_counter() - t0) * 1000)
                assert answer.status_code == 200, (label, answer.status_code)
            timings[label] = times
            extra = ""
            if path == "/api/videos":
                body = answer.json()
                extra = f"  ({len(body['videos'])} videos of total {body['total']:,}" + (
                    ", estimated)" if body.get("total_estimated") else ")")
            print(f"{label:34s} n={len(times):3d}  p50 {percentile(times, 50):7.1f} ms  "
                  f"p95 {percentile(times, 95):7.1f} ms  max {max(times):7.1f} ms{extra}", flush=True)
    return timings


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def explain(engine: sa.Engine, captured: Captured, verbose: bool) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of each captured statement; returns the lines flagging a Seq Scan."""
    flagged = []
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for label, statements in captured.seen.items():
            for statement, parameters in statements.items():
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
                plan = [row[0] for row in cursor.fetchall()]
                raw.rollback()
                seq = [line.strip() for line in plan if "Seq Scan on" in line
                       and line.split("Seq Scan on ")[1].split()[0] in BIG_TABLES]
                scans = sorted({m.group(1) for line in plan if (m := SCAN.search(line))})
                summary = " ".join(statement.split())[:110]
                print(f"[{label}] {summary}…\n    {plan[-1].strip()}; scans: {'; '.join(scans) or '-'}"
                      + (f"\n    SEQ SCAN ON A BIG TABLE: {seq}" if seq else ""))
                if verbose:
                    print("\n".join("      " + line for line in plan))
                flagged += [f"{label}: {s}" for s in seq]
    finally:
        raw.close()
    return flagged


def one_upload(catalog: Catalog, i: int) -> None:
    """The catalog writes of one video from register to publish, as the pipeline's tasks make them."""
    video_id, run = f"vid_bench{os.getpid()}x{i}", f"manual__bench{os.getpid()}x{i}"
    version = catalog.register(video_id=video_id, source_uri=f"s3://vodflow/uploads/bench/{i}.mp4", etag=f"e{i}",
                               size=10_000_000, title=f"bench upload {i}", run_id=run, ladder_version=1)
    catalog.set_status(video_id, run, "probing")
    catalog.add_event(video_id, "probed", duration=60.0)
    names = [r[0] for r in RENDITIONS]
    catalog.plan_renditions(video_id, run, version, [RenditionPlan(n, w, h, k, 128, 30.0) for n, w, h, k in RENDITIONS])
    catalog.renditions_started(video_id, version, names)
    for progress in (25.0, 50.0, 75.0):
        catalog.renditions_progress_at_least(video_id, version, names, progress)
    for name in names:
        catalog.rendition_done(video_id, version, name, codecs="avc1.640028", bytes_=1_000_000, segments=10)
        catalog.add_event(video_id, "encoded", rendition=name, seconds=30.0, realtime_factor=2.0, bytes=1_000_000)
    catalog.set_status(video_id, run, "publishing")
    catalog.publish(video_id=video_id, run_id=run, version=version, master_uri=f"s3://vodflow/videos/{video_id}/v1/"
                    "hls/master.m3u8", poster_uri=None, ladder_version=1,
                    variants=[VariantRecord(n, 1000, 900, f"s3://vodflow/x/{n}.m3u8") for n in names],
                    outputs=[{"kind": "hls", "name": "master", "key": f"videos/{video_id}/v1/hls/master.m3u8",
                              "bytes": 900, "content_type": "application/vnd.apple.mpegurl"}])


def writes(catalog: Catalog, count: int) -> float:
    t0 = time.perf_counter()
    for i in range(count):
        one_upload(catalog, i)
    per = (time.perf_counter() - t0) / count
    print(f"catalog writes of one upload (register → publish, {count} uploads in sequence): {per * 1000:.1f} ms "
          f"→ one writer at a time carries {86400 / per:,.0f} uploads a day")
    return per


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per endpoint before stopping at 10+")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--db", help="use this database (kept), seeding it only if it is empty")
    parser.add_argument("--plans", action="store_true", help="print every plan in full")
    parser.add_argument("--writes", type=int, default=200, help="uploads whose catalog writes are timed (0: none)")
    parser.add_argument("--p95-limit", type=float, default=200.0)
    args = parser.parse_args()
    name = args.db or f"vodflow_scale_{os.getpid()}"
    url = create_database(ADMIN_URL, name, exist_ok=bool(args.db))
    print(f"database {name}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    engine = make_engine(url)
    try:
        catalog = Catalog(engine)
        catalog.migrate()
        with engine.connect() as conn:
            have = conn.execute(sa.select(sa.func.count()).select_from(sa.select(videos.c.id).limit(1).subquery())
                                ).scalar()
        if not have:
            print(f"seeding {args.videos:,} videos …", flush=True)
            print(f"seeded in {seed(engine, args.videos):.1f} s", flush=True)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
        configure(url)
        captured = Captured()
        sa.event.listen(sa.engine.Engine, "before_cursor_execute", captured)
        with engine.connect() as conn:
            active = list(conn.execute(sa.select(videos.c.dag_run_id).where(
                videos.c.status.in_(("queued", "probing", "transcoding", "publishing")))).scalars())
        base, token, server = serve(active)
        try:
            timings = measure(base, token, endpoints(catalog), args.requests, args.budget, captured)
        finally:
            server.should_exit = True
        print(f"load average after the requests {os.getloadavg()[0]:.2f}")
        flagged = explain(engine, captured, args.plans)
        print("no Seq Scan on a big table" if not flagged else f"{len(flagged)} Seq Scans on big tables")
        if args.writes:
            writes(catalog, args.writes)
        slow = [label for label, times in timings.items() if percentile(times, 95) > args.p95_limit]
        print(f"p95 over {args.p95_limit:.0f} ms: {slow}" if slow else f"every p95 within {args.p95_limit:.0f} ms")
        return 1 if slow else 0
    finally:
        engine.dispose()
        if not (args.keep or args.db):
            drop_database(ADMIN_URL, name)
        elif args.db is None:
            print(f"kept database {name}")


if __name__ == "__main__":
    sys.exit(main())
