"""The real Airflow stack, started once per test session and stopped (with everything it spawned) after."""

from __future__ import annotations

import json
import os
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from tests.conftest import airflow_connection_json, create_test_database, drop_test_database
from tests.tcpproxy import CuttableProxy
from vodflow.catalog import Catalog, make_engine
from vodflow.devtools.client import AirflowClient
from vodflow.devtools.devstack import AirflowStack, celery_stack
from vodflow.storage import Storage

REDIS_URL = os.environ.get("VODFLOW_TEST_REDIS", "redis://127.0.0.1:6379/11")


@dataclass
class Stack:
    airflow: AirflowStack
    client: AirflowClient
    catalog: Catalog
    storage: Storage
    state_dir: Path
    s3_proxy: CuttableProxy | None = None  # the stack reaches S3 through it, so a test can cut S3 off


# Webhooks in the embedded stack: signed with a secret made for the session (never one in the repo); only the
# name `localhost` is allowlisted, so http://127.0.0.1 callbacks are still refused there.
WEBHOOK_SECRET = secrets.token_hex(24)
WEBHOOK_HOST = "localhost"
METRICS_TOKEN = secrets.token_hex(24)
WATCH_PREFIX = "uploads/watched/"  # the watcher's prefix in tests: other tests' uploads must not start runs
EVENTS_PREFIX = "uploads/notified/"  # the event-driven watcher's (S3 → SQS → AssetWatcher): not the poller's
EVENTS_QUEUE = "vodflow-upload-events"


def upload_events_queue(s3: str) -> str:
    """An SQS queue on moto's server (the same endpoint as S3) for the event-driven watcher; its URL."""
    from airflow.providers.amazon.aws.hooks.sqs import SqsHook

    return SqsHook(aws_conn_id="aws_default").get_conn().create_queue(QueueName=EVENTS_QUEUE)["QueueUrl"]


@pytest.fixture(scope="session")
def embedded_stack(s3: str, airflow_env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """What `make demo` runs: SQLite metadata DB, LocalExecutor, SQLite catalog, S3 at a local endpoint."""
    state = tmp_path_factory.mktemp("embedded")
    upstream = urlsplit(s3)
    proxy = CuttableProxy(upstream.hostname, upstream.port).start()
    # The SQS watcher talks to moto directly (its own connection): cutting S3 off in a test leaves it alone.
    sqs_conn = json.loads(airflow_env["AIRFLOW_CONN_AWS_DEFAULT"])
    airflow = AirflowStack(state, "embedded.env", {"S3_ENDPOINT": proxy.endpoint}, extra_env={
        # The scheduler looks for orphaned tasks every 5 s (every 300 s by default), so that if a stall ever made it
        # take itself for dead and reset its own tasks, it would do so in every test that stalls it (test_stall).
        "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "5",
        "AIRFLOW__VODFLOW__MAX_DURATION_SECONDS": "120",  # so that a limit can be tested with a short file
        "AIRFLOW__VODFLOW__WATCH_PREFIX": WATCH_PREFIX, "AIRFLOW__VODFLOW__WATCH_POLL_SECONDS": "1",
        "AIRFLOW__VODFLOW__WATCH_SETTLE_SECONDS": "2",
        "AIRFLOW__VODFLOW__WEBHOOK_SECRET": WEBHOOK_SECRET, "AIRFLOW__VODFLOW__WEBHOOK_ALLOWED_HOSTS": WEBHOOK_HOST,
        "AIRFLOW__VODFLOW__WEBHOOK_BACKOFF_SECONDS": "0.2", "AIRFLOW__VODFLOW__METRICS_TOKEN": METRICS_TOKEN,
        "AIRFLOW__VODFLOW__UPLOAD_PART_SIZE_BYTES": str(5 * 1024 * 1024),  # S3's minimum: a 12 MiB file, 3 parts
        "AIRFLOW__VODFLOW__WATCH_RUN_SECONDS": "30",  # quiet watcher runs end (skipped) during the tests too
        "AIRFLOW__VODFLOW__UPLOAD_EVENTS_QUEUE": upload_events_queue(s3),
        "AIRFLOW__VODFLOW__UPLOAD_EVENTS_PREFIX": EVENTS_PREFIX,
        "AIRFLOW__VODFLOW__UPLOAD_EVENTS_CONN_ID": "vodflow_sqs", "AIRFLOW_CONN_VODFLOW_SQS": json.dumps(sqs_conn)})
    airflow.prepare()
    airflow.start()
    try:
        client = airflow.client()
        client.timeout = 120  # a loaded 2-core machine can keep the API busy
        client.wait_for_dag("transcode_video")
        # Paused: moto lists every unfinished multipart upload as initiated in 2010, so the hourly cleanup would
        # abort a test's upload in flight at the top of the hour (tests/integration/triggers/test_multipart.py
        # tests the cleanup itself).
        client.wait_for_dag("cleanup_uploads")
        client.set_paused("cleanup_uploads")
        yield Stack(airflow, client, Catalog(make_engine(f"sqlite:///{state / 'catalog.db'}")),
                    Storage("aws_default", "vodflow"), state, proxy)
    finally:
        airflow.stop()
        proxy.stop()


@pytest.fixture(scope="module")
def celery(s3: str, airflow_env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The distributed stack on this machine's servers: Postgres (fresh databases), Redis (its own DB index),
    FAB auth, one `default` and one `transcode` Celery worker."""
    suffix = uuid.uuid4().hex[:8]
    metadata_db, catalog_db = f"vodflow_af_{suffix}", f"vodflow_cat_{suffix}"
    broker = redis.Redis.from_url(REDIS_URL)
    broker.flushdb()
    metadata_url, catalog_url = create_test_database(metadata_db), create_test_database(catalog_db)
    state = tmp_path_factory.mktemp("celery")
    airflow = celery_stack(state, airflow_db_url=metadata_url, redis_url=REDIS_URL,
                           catalog_conn=airflow_connection_json(catalog_url), s3_endpoint=s3,
                           transcode_workers=1, transcode_concurrency=4, heartbeat_timeout=20, triggerer=False)
    catalog = Catalog(make_engine(catalog_url))
    try:
        airflow.prepare()
        airflow.start()
        client = airflow.client()
        client.timeout = 120  # a loaded 2-core machine can keep the API busy
        client.wait_for_dag("transcode_video")
        yield Stack(airflow, client, catalog, Storage("aws_default", "vodflow"), state)
    finally:
        airflow.stop()
        catalog.engine.dispose()
        drop_test_database(metadata_db)
        drop_test_database(catalog_db)
        broker.flushdb()
