"""`vodflow` command line: the demo, the Celery stack, submitting videos, catalog migrations."""

from __future__ import annotations

import argparse
import logging
import sys


def _db(args: argparse.Namespace) -> int:
    from vodflow.catalog import catalog_for_connection
    from vodflow.catalog.migrations import revision_id
    from vodflow.settings import load_settings

    catalog = catalog_for_connection(load_settings().catalog_conn_id)  # migrates (Alembic) on first use
    print(f"catalog schema at revision {revision_id(catalog.schema_version())}")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="vodflow")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run the pipeline end to end on this machine", add_help=False)
    sub.add_parser("stack", help="run Airflow on Celery (no Docker) against your Postgres and Redis", add_help=False)
    sub.add_parser("submit", help="upload a video, transcode it, follow its progress", add_help=False)
    db = sub.add_parser("db", help="catalog schema")
    db.add_argument("action", choices=["migrate"])
    args, rest = parser.parse_known_args(argv)
    if args.command == "demo":
        from vodflow.devtools.demo import main as demo_main

        return demo_main(rest)
    if args.command == "stack":
        from vodflow.devtools.stack import main as stack_main

        return stack_main(rest)
    if args.command == "submit":
        from vodflow.devtools.submit import main as submit_main

        return submit_main(rest)
    return _db(args)


if __name__ == "__main__":
    sys.exit(main())
