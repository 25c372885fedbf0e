"""A stalled metadata database costs no task a try: the embedded stack's SQLite locked by another writer for 36 s,
longer than its 30 s busy timeout, while a video encodes. Every component waits that long; then the scheduler
must not take its own late heartbeat for a dead scheduler's and reset the tasks it started, and a task's calls
to the api-server must not give up while the api-server waits for the lock (config/embedded.env). Each of
those once cost the task a try (try_number 2), and bad uploads a retry they must never get (test_hardening)."""

from __future__ import annotations

import contextlib
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_priority import minute_long

pytestmark = pytest.mark.e2e
DAG = "transcode_video"


@contextlib.contextmanager
def metadata_locked(state_dir: Path, timeout: float = 60) -> Iterator[None]:
    """Airflow's SQLite database write-locked by this process (taken between the components' own writes)."""
    database = sqlite3.connect(state_dir / "airflow" / "airflow.db", timeout=0, isolation_level=None)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                database.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError:
                assert time.monotonic() < deadline, "the metadata database never came free"
                time.sleep(0.05)
        try:
            yield
        finally:
            database.execute("ROLLBACK")
    finally:
        database.close()


def test_a_stalled_metadata_database_costs_no_task_a_try(embedded_stack, tmp_path):
    """The transcode task is running when the lock is taken: it has to live through the stall."""
    stack = embedded_stack
    source = minute_long(tmp_path / "minute.mp4")
    key = f"uploads/stall-{uuid.uuid4().hex[:8]}/minute.mp4"
    stack.storage.client.upload_file(str(source), "vodflow", key)
    run_id = stack.client.trigger(DAG, {"source": f"s3://vodflow/{key}", "ladder": ["720p", "480p", "360p"]},
                                  run_id=f"stall-{uuid.uuid4().hex[:8]}", attempts=4)
    deadline = time.monotonic() + 300
    while not any(t["task_id"] == "transcode" and t["state"] == "running"
                  for t in stack.client.task_instances(DAG, run_id)):
        assert time.monotonic() < deadline, "the transcode never started"
        time.sleep(0.5)
    with metadata_locked(stack.state_dir):
        time.sleep(36)
    run = stack.client.wait_for_run(DAG, run_id, timeout=600)
    tries = {(t["task_id"], t["map_index"]): t["try_number"] for t in stack.client.task_instances(DAG, run_id)}
    assert run["state"] == "success" and set(tries.values()) == {1}, tries
