"""The real Airflow stack, started once per test session and stopped (with everything it spawned) after."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from vodflow.catalog import Catalog, make_engine
from vodflow.client import AirflowClient
from vodflow.devstack import AirflowStack
from vodflow.storage import Storage


@dataclass
class Stack:
    airflow: AirflowStack
    client: AirflowClient
    catalog: Catalog
    storage: Storage
    state_dir: Path


@pytest.fixture(scope="session")
def embedded_stack(s3: str, airflow_env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """What `make demo` runs: SQLite metadata DB, LocalExecutor, SQLite catalog, S3 at a local endpoint."""
    state = tmp_path_factory.mktemp("embedded")
    airflow = AirflowStack(state, "embedded.env", {"S3_ENDPOINT": s3})
    airflow.prepare()
    airflow.start()
    try:
        client = airflow.client()
        client.wait_for_dag("transcode_video")
        yield Stack(airflow, client, Catalog(make_engine(f"sqlite:///{state / 'catalog.db'}")),
                    Storage("aws_default", "vodflow"), state)
    finally:
        airflow.stop()
