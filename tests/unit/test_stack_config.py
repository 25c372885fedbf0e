"""`vodflow stack` over several machines, as configuration: the secrets survive restarts and are shared by a
joining worker, the api-server advertises the address workers reach it at, a worker-only stack starts only
transcode workers. (No processes: what the components would be started with.)"""

from __future__ import annotations

import json
import stat

from vodflow.devtools.devstack import celery_stack
from vodflow.devtools.stackstate import SECRETS_FILE, stack_secrets

DB = "postgresql+psycopg2://u@db.internal/airflow"


def make(tmp_path, name: str, **options):
    return celery_stack(tmp_path / name, airflow_db_url=DB, redis_url="redis://cache.internal:6379/0",
                        catalog_conn="{}", s3_endpoint="https://s3.internal", **options)


def test_secrets_are_kept_across_restarts_and_private(tmp_path):
    first = stack_secrets(tmp_path / "a")
    assert stack_secrets(tmp_path / "a") == first and set(first) == {"FERNET_KEY", "JWT_SECRET"}
    assert stat.S_IMODE((tmp_path / "a" / SECRETS_FILE).stat().st_mode) == 0o600
    assert stack_secrets(tmp_path / "b") != first
    joined = stack_secrets(tmp_path / "c", copy_from=tmp_path / "a" / SECRETS_FILE)
    assert joined == first


def test_a_stack_restarted_on_its_state_dir_keeps_its_keys(tmp_path):
    one, two = make(tmp_path, "s"), make(tmp_path, "s")
    for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET"):
        assert one.config[key] == two.config[key] and one.config[key]


def test_the_first_machine_listens_everywhere_and_advertises_its_address(tmp_path):
    local = make(tmp_path, "local")
    assert local.config["AIRFLOW__API__HOST"] == "127.0.0.1"  # by default nothing changes: loopback only
    assert local.config["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"http://127.0.0.1:{local.api_port}/execution/"
    first = make(tmp_path, "first", api_port=8080, bind_host="0.0.0.0", advertise_host="10.1.2.3")
    assert first.config["AIRFLOW__API__HOST"] == "0.0.0.0"
    assert first.config["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://10.1.2.3:8080/execution/"
    assert first.config["AIRFLOW__API__BASE_URL"] == "http://10.1.2.3:8080"


def test_a_worker_only_stack_joins_with_the_first_machines_secrets(tmp_path):
    first = make(tmp_path, "first", api_port=8080, bind_host="0.0.0.0", advertise_host="10.1.2.3")
    worker = make(tmp_path, "worker", transcode_workers=2, workers_only=True, api_url="http://10.1.2.3:8080",
                  secrets_from=tmp_path / "first" / SECRETS_FILE)
    assert [c.name for c in worker.components] == ["transcode-1", "transcode-2"]
    assert all("--queues" in c.args and "transcode" in c.args for c in worker.components)
    assert worker.config["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://10.1.2.3:8080/execution/"
    for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET"):
        assert worker.config[key] == first.config[key]
    assert json.loads((tmp_path / "worker" / SECRETS_FILE).read_text())["FERNET_KEY"] == \
        first.config["AIRFLOW__CORE__FERNET_KEY"]


def test_open_videos_are_the_transcode_slots_plus_two_prepared_ahead(tmp_path):
    """The scheduler re-examines every open run on every loop: no more open than the pool can use soon."""
    for workers, concurrency, expected in ((1, 4, 6), (2, 4, 10), (1, 1, 4)):
        stack = make(tmp_path, f"s{workers}{concurrency}", transcode_workers=workers,
                     transcode_concurrency=concurrency)
        assert stack.values["TRANSCODE_SLOTS"] == str(workers * concurrency)
        assert stack.config["AIRFLOW__VODFLOW__MAX_ACTIVE_VIDEOS"] == str(expected)
