"""Shared fixtures: real media made with ffmpeg, a real Postgres database, S3 over real HTTP.

Each fixture creates what it needs and removes exactly that afterwards (its database, its server process).
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

# Airflow must not touch ~/airflow from the test process.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="vodflow-test-airflow-"))

import pytest
import sqlalchemy as sa

from vodflow.devtools.databases import create_database, drop_database
from vodflow.devtools.samples import SampleSpec, make_sample

PG_ADMIN_URL = os.environ.get("VODFLOW_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

MEDIA_SPECS: dict[str, SampleSpec] = {
    "landscape": SampleSpec(1920, 1080, 10.0, "30", audio=True),
    "portrait": SampleSpec(720, 1280, 10.0, "30", audio=True),
    "no_audio": SampleSpec(1280, 720, 10.0, "25", audio=False),
    "small": SampleSpec(426, 240, 4.0, "30", audio=True),
}


class Media:
    """Sample files generated on first use and shared by the whole session."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __getitem__(self, name: str) -> Path:
        path = self.root / f"{name}.mp4"
        if not path.exists():
            make_sample(str(path), MEDIA_SPECS[name])
        return path

    def bad(self, name: str) -> Path:
        """Files that must be refused, each a different way."""
        path = self.root / f"bad-{name}"
        if path.exists():
            return path
        good = self["small"].read_bytes()
        if name == "empty.mp4":
            path.write_bytes(b"")
        elif name == "text.mp4":
            path.write_text("This is not a video.\n" * 20)
        elif name == "truncated.mp4":  # moov at the end, upload cut halfway: no moov at all
            path.write_bytes(good[: len(good) // 2])
        elif name == "image.mp4":
            make_sample(str(self.root / "still.jpg"), SampleSpec(320, 240, 0.04, "25", audio=False, codec="mjpeg",
                                                                 pix_fmt="yuvj420p", noise=0,
                                                                 extra_output_args=("-frames:v", "1")))
            path.write_bytes((self.root / "still.jpg").read_bytes())
        elif name == "audio-only.m4a":
            import subprocess

            subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=d=3", "-c:a", "aac",  # noqa: S603
                            str(path.with_suffix(".m4a"))], check=True)
            path.with_suffix(".m4a").rename(path)
        elif name == "cut-faststart.mp4":  # moov up front, media cut at 40 %: decodes, but only partly
            full = self.root / "faststart.mp4"
            make_sample(str(full), SampleSpec(640, 360, 10.0, "30", audio=True,
                                              extra_output_args=("-movflags", "+faststart")))
            data = full.read_bytes()
            path.write_bytes(data[: int(len(data) * 0.4)])
        else:
            raise KeyError(name)
        return path


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    return Media(tmp_path_factory.mktemp("media"))


def create_test_database(name: str) -> str:
    return create_database(PG_ADMIN_URL, name)


def drop_test_database(name: str) -> None:
    drop_database(PG_ADMIN_URL, name)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A Postgres database of its own for the session, dropped afterwards. Yields its SQLAlchemy URL."""
    name = f"vodflow_test_{uuid.uuid4().hex[:10]}"
    url = create_test_database(name)
    try:
        yield url
    finally:
        drop_test_database(name)


def airflow_connection_json(url: str) -> str:
    """An Airflow connection (JSON form) for a SQLAlchemy URL: what AIRFLOW_CONN_* holds."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return json.dumps({"conn_type": "sqlite", "host": parsed.database})
    return json.dumps({"conn_type": "postgres", "host": parsed.host, "port": parsed.port or 5432,
                       "login": parsed.username, "password": parsed.password or "", "schema": parsed.database})


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 server on a free loopback port, bucket `vodflow` created. Yields the endpoint URL."""
    from vodflow.devtools.devstack import LocalS3

    server = LocalS3(tmp_path_factory.mktemp("s3")).start(buckets=["vodflow"])
    try:
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture(scope="session")
def airflow_env(s3: str, pg_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Airflow connections and [vodflow] settings in this process's environment, as a worker would have them."""
    scratch = tmp_path_factory.mktemp("scratch")
    env = {
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws", "login": "vodflow-test",
                                                "password": "vodflow-test-secret",
                                                "extra": {"endpoint_url": s3, "region_name": "us-east-1"}}),
        "AIRFLOW_CONN_VODFLOW_CATALOG": airflow_connection_json(pg_database),
        "AIRFLOW__VODFLOW__BUCKET": "vodflow",
        "AIRFLOW__VODFLOW__SCRATCH_DIR": str(scratch),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    _clear_caches()
    try:
        yield env
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _clear_caches()


def _clear_caches() -> None:
    from vodflow.catalog import catalog_for_connection
    from vodflow.settings import load_settings

    load_settings.cache_clear()
    catalog_for_connection.cache_clear()
