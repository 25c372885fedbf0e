"""What every benchmark shares: the Airflow stacks it runs on (started and torn down the same way), timing, and
what the bench's own children, bare ffmpeg, cost (`children_cpu`). What a stack's processes cost: `cpumeter`."""

from __future__ import annotations

import os
import resource
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import redis

from vodflow.devtools.databases import create_database, drop_database
from vodflow.devtools.devstack import AirflowStack, celery_stack
from vodflow.devtools.stack import catalog_connection
from vodflow.media.source.info import SourceInfo
from vodflow.media.source.inputs import FILE_PROTOCOLS
from vodflow.media.source.probe import probe

PG_ADMIN = os.environ.get("VODFLOW_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("VODFLOW_BENCH_REDIS", "redis://127.0.0.1:6379/12")
DAG = "transcode_video"


@contextmanager
def celery_bench_stack(work: Path, s3_endpoint: str, name: str,
                       configure: Callable[[AirflowStack], None] | None = None,
                       **options: Any) -> Iterator[tuple[AirflowStack, str]]:
    """The Celery stack on fresh databases of this machine's Postgres and a flushed Redis DB; yields the started
    stack (``transcode_video`` parsed) and the catalog's URL; drops the databases after. No triggerer unless
    ``triggerer=True``."""
    suffix = uuid.uuid4().hex[:8]
    databases = [f"vodflow_{name}_af_{suffix}", f"vodflow_{name}_cat_{suffix}"]
    stack = None
    options.setdefault("triggerer", False)
    try:
        metadata_url, catalog_url = (create_database(PG_ADMIN, database) for database in databases)
        redis.Redis.from_url(REDIS_URL).flushdb()
        stack = celery_stack(work / "stack", airflow_db_url=metadata_url, redis_url=REDIS_URL,
                             catalog_conn=catalog_connection(catalog_url), s3_endpoint=s3_endpoint,
                             **options)
        if configure is not None:
            configure(stack)
        yield _started(stack), catalog_url
    finally:
        if stack is not None:
            stack.stop()
        for database in databases:
            drop_database(PG_ADMIN, database)


@contextmanager
def embedded_bench_stack(work: Path, s3_endpoint: str) -> Iterator[tuple[AirflowStack, str]]:
    """What `make demo` runs: SQLite, LocalExecutor."""
    stack = AirflowStack(work / "stack", "embedded.env", {"S3_ENDPOINT": s3_endpoint})
    try:
        yield _started(stack), f"sqlite:///{work / 'stack' / 'catalog.db'}"
    finally:
        stack.stop()


def _started(stack: AirflowStack) -> AirflowStack:
    stack.prepare()
    stack.start()
    stack.client().wait_for_dag(DAG)
    return stack


def s3_client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="bench", aws_secret_access_key="bench-secret",
                        region_name="us-east-1")


def iso_seconds(value: str | None) -> float | None:
    """An API timestamp (ISO 8601) as seconds since the epoch."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


def children_cpu() -> float:
    """CPU seconds (user + system) of every child of this process that has exited and been waited for, and of
    what those had waited for themselves: take it before and after running bare ffmpeg, the difference is
    exactly ffmpeg's CPU (the kernel adds a child's times to this when it is reaped)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wall_and_cpu(command: list[str]) -> tuple[float, float]:
    """Run an argument list to completion: its wall time and the CPU time it used (user + system)."""
    before = children_cpu()
    started = time.monotonic()
    subprocess.run(command, check=True, capture_output=True)  # noqa: S603 - argument list
    return time.monotonic() - started, children_cpu() - before


def probe_file(path: Path) -> SourceInfo:
    """A local source as the pipeline probes one (its first 4 KiB as the head: not the whole file read)."""
    with open(path, "rb") as f:
        head = f.read(4096)
    return probe(str(path), path.stat().st_size, head, protocols=FILE_PROTOCOLS)
