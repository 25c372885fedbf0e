"""`vodflow stack`: the distributed stack without Docker, against a Postgres and a Redis you already run.

Starts api-server, scheduler, dag-processor, triggerer, one `default`-queue Celery worker and N
`transcode`-queue workers, prints where everything is, and on Ctrl-C/SIGTERM stops exactly what it started.

More machines: start the first one with ``--advertise-host <its address> --api-port 8080`` (the api-server then
listens on every interface and tells workers that address), copy its ``<state>/secrets.json`` (Fernet key and
JWT secret, kept across restarts) to the other machine, and run ``vodflow stack --worker-only --api-url
http://<first>:8080 --secrets secrets.json`` there with the same --postgres, --catalog, --redis and
--s3-endpoint: it starts only `transcode` workers.
"""

from __future__ import annotations

import argparse
import json
import signal
import time
from pathlib import Path

import sqlalchemy as sa

from vodflow.devtools.databases import create_database
from vodflow.devtools.devstack import REPO, USERS, LocalS3, celery_stack

DEFAULT_PG = "postgresql+psycopg2://postgres@127.0.0.1:5432"


def ensure_database(url: str) -> str:
    """Create the database named in ``url`` if it does not exist (connecting to the server's `postgres` db)."""
    parsed = sa.make_url(url)
    admin = parsed.set(database="postgres").render_as_string(hide_password=False)
    create_database(admin, parsed.database, exist_ok=True)
    return url


def catalog_connection(url: str) -> str:
    """AIRFLOW_CONN_VODFLOW_CATALOG (JSON form) for a Postgres SQLAlchemy URL."""
    parsed = sa.make_url(url)
    return json.dumps({"conn_type": "postgres", "host": parsed.host or "127.0.0.1", "port": parsed.port or 5432,
                       "login": parsed.username, "password": parsed.password or "", "schema": parsed.database})


def multi_host(args: argparse.Namespace) -> dict[str, object]:
    """celery_stack's options for a stack spread over machines (none: everything on loopback, as before)."""
    if args.worker_only:
        return {"workers_only": True, "api_url": args.api_url.rstrip("/"), "secrets_from": args.secrets}
    options: dict[str, object] = {"api_port": args.api_port or None}
    if args.advertise_host not in ("127.0.0.1", "localhost", "::1"):
        options.update(bind_host="0.0.0.0", advertise_host=args.advertise_host)  # listen on every interface: asked for
    return options


def _stop(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vodflow stack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=f"{DEFAULT_PG}/vodflow_airflow", help="Airflow metadata DB URL")
    parser.add_argument("--catalog", default=f"{DEFAULT_PG}/vodflow_catalog", help="video catalog DB URL")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Celery broker URL")
    parser.add_argument("--s3-endpoint", default="", help="S3 endpoint URL (default: start a local one)")
    parser.add_argument("--s3-access-key", default="vodflow")
    parser.add_argument("--s3-secret", default="vodflow-local")
    parser.add_argument("--bucket", default="vodflow")
    parser.add_argument("--workers", type=int, default=1, help="transcode-queue Celery workers")
    parser.add_argument("--concurrency", type=int, default=4, help="tasks per transcode worker")
    parser.add_argument("--state", default=str(REPO / ".stack"), help="logs, scratch and local state")
    parser.add_argument("--advertise-host", default="127.0.0.1",
                        help="address other machines reach this api-server at (not loopback: listen on all)")
    parser.add_argument("--api-port", type=int, default=0, help="api-server port (default: a free one)")
    parser.add_argument("--worker-only", action="store_true",
                        help="only transcode workers, joining the stack at --api-url (needs --secrets, --s3-endpoint)")
    parser.add_argument("--api-url", default="", help="with --worker-only: the first machine's api-server URL")
    parser.add_argument("--secrets", type=Path, help="with --worker-only: a copy of the first machine's secrets.json")
    args = parser.parse_args(argv)
    if args.worker_only and not (args.api_url and args.secrets and args.s3_endpoint):
        parser.error("--worker-only needs --api-url, --secrets and --s3-endpoint (the first machine's)")
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop)

    state = Path(args.state)
    state.mkdir(parents=True, exist_ok=True)
    s3 = LocalS3(state) if not args.s3_endpoint else None
    stack = None
    try:
        if s3:
            s3.start(buckets=[args.bucket])
        stack = celery_stack(
            state, airflow_db_url=args.postgres if args.worker_only else ensure_database(args.postgres),
            redis_url=args.redis,
            catalog_conn=catalog_connection(args.catalog if args.worker_only else ensure_database(args.catalog)),
            s3_endpoint=args.s3_endpoint or s3.endpoint, s3_access_key=args.s3_access_key,
            s3_secret=args.s3_secret, bucket=args.bucket, transcode_workers=args.workers,
            transcode_concurrency=args.concurrency, **multi_host(args))
        if args.worker_only:
            stack.start()
            print(f"{args.workers} transcode worker(s) joined {args.api_url}; logs in {state / 'logs'}", flush=True)
            while True:
                stack.check_alive()
                time.sleep(2)
        stack.prepare()
        stack.start()
        print(f"Airflow UI and REST API: {stack.base_url}  (users: "
              + ", ".join(f"{u}/{p}" for u, (p, _) in USERS.items()) + ")")
        print(f"Videos (operator view): {stack.base_url}/plugin/videos   JSON API: {stack.base_url}/vodflow/api/videos")
        print(f"S3 endpoint: {args.s3_endpoint or s3.endpoint}  bucket: {args.bucket}")
        print(f"Processes: {', '.join(stack.processes)}; logs in {state / 'logs'}")
        print("Ctrl-C stops everything this command started.", flush=True)
        while True:
            stack.check_alive()
            time.sleep(2)
    except KeyboardInterrupt:
        print("\nStopping…", flush=True)
        return 0
    finally:
        if stack is not None:
            stack.stop()
        if s3:
            s3.stop()


if __name__ == "__main__":
    raise SystemExit(main())
