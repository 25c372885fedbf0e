"""Per-user rate limits and quotas (issue 26) over real HTTP handling: vodflow's FastAPI app and the guard on
Airflow's trigger endpoint, Airflow's SimpleAuthManager with real JWTs, the counters in a real Postgres catalog,
upload grants against S3 over HTTP (moto), runs in flight in Airflow's own metadata DB. Two uvicorn processes
against one catalog show that every api-server process counts together."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.web.test_conf_guard import GOOD, airflow
from vodflow.settings import load_settings
from vodflow.storage import Storage

pytestmark = pytest.mark.integration
USERS = "admin:admin,alice:user,bob:user"
JWT_SECRET = "vodflow-ratelimit-test-secret-" + "0123456789abcdef" * 3
LIMITS = {"RATE_UPLOADS_PER_MINUTE": "3", "RATE_TRIGGERS_PER_MINUTE": "2", "QUOTA_VIDEOS_IN_FLIGHT": "2",
          "QUOTA_BYTES_PER_DAY": "0", "METRICS_TOKEN": "scrape-me"}
UPLOAD = {"filename": "clip.mp4", "content_type": "video/mp4", "size": 1000}
RATE_FIELDS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy", "RateLimit")


@pytest.fixture(scope="module")
def auth_manager() -> Iterator[Any]:
    """Airflow's metadata tables (the trigger dependency's team lookup; dag_run for runs in flight) and a
    SimpleAuthManager with an admin and two users who may trigger, signing with a fixed secret (the uvicorn
    processes below check the same tokens)."""
    from airflow import settings
    from airflow.api_fastapi import app as airflow_app
    from airflow.models import import_all_models
    from airflow.models.base import Base

    import_all_models()
    Base.metadata.create_all(settings.engine)
    env = {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": USERS, "AIRFLOW__API_AUTH__JWT_SECRET": JWT_SECRET}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield airflow_app.init_auth_manager()
    finally:
        airflow_app.purge_cached_app()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def limited(airflow_env, auth_manager, monkeypatch) -> Iterator[None]:
    for key, value in LIMITS.items():
        monkeypatch.setenv(f"AIRFLOW__VODFLOW__{key}", value)
    load_settings.cache_clear()
    yield
    load_settings.cache_clear()


def bearer(auth_manager: Any, name: str, role: str) -> dict[str, str]:
    """A fresh user name per test (``name-<hex>``), so no test shares another's counters."""
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    token = auth_manager.generate_jwt(SimpleAuthManagerUser(username=name, role=role))
    return {"Authorization": f"Bearer {token}"}


def someone(auth_manager: Any, role: str = "user") -> tuple[str, dict[str, str]]:
    name = f"{role}-{uuid.uuid4().hex[:8]}"
    return name, bearer(auth_manager, name, role)


def fresh_minute(room: float = 12.0) -> None:
    """Wait for the next minute if this one ends within ``room`` s: the counts below must share one window."""
    left = 60 - time.time() % 60
    if left < room:
        time.sleep(left + 0.2)


def vodflow_app() -> TestClient:
    from vodflow.web.api import app

    return TestClient(app)


def multipart_uploads() -> int:
    return len(Storage("aws_default", "vodflow").list_multipart_uploads("uploads/"))


def test_the_n_plus_first_upload_grant_in_a_minute_is_429_before_anything_is_granted(limited, auth_manager):
    _, alice = someone(auth_manager)
    client = vodflow_app()
    fresh_minute()
    seen = []
    for _ in range(3):
        granted = client.post("/api/uploads", json=UPLOAD, headers=alice)
        assert granted.status_code == 201 and granted.json()["method"] == "PUT", granted.text
        seen.append(granted.headers["RateLimit-Remaining"])
        assert granted.headers["RateLimit-Limit"] == "3" and 0 < int(granted.headers["RateLimit-Reset"]) <= 60
        assert granted.headers["RateLimit-Policy"].startswith('"uploads";q=3;w=60')
    assert seen == ["2", "1", "0"]
    before = multipart_uploads()
    refused = client.post("/api/uploads", json={**UPLOAD, "multipart": True}, headers=alice)
    assert refused.status_code == 429, refused.text
    body = refused.json()
    assert (body["limit"], body["value"], body["used"]) == ("rate_uploads_per_minute", 3, 3), body
    assert "url" not in body and "parts" not in body and multipart_uploads() == before  # nothing opened in S3
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 60 and refused.headers["RateLimit-Reset"] == str(retry_after)
    assert refused.headers["RateLimit-Remaining"] == "0" and refused.headers["RateLimit"].startswith(
        f'"uploads";r=0;t={retry_after}')
    print(f"upload grants: 3 granted (remaining {seen}), 4th → 429, Retry-After {retry_after} s")


def test_an_admin_is_not_limited(limited, auth_manager):
    _, admin = someone(auth_manager, "admin")
    client = vodflow_app()
    answers = [client.post("/api/uploads", json=UPLOAD, headers=admin) for _ in range(5)]
    assert [a.status_code for a in answers] == [201] * 5, answers[-1].text
    assert not any(field in answers[-1].headers for field in RATE_FIELDS)


def test_a_trigger_over_the_limit_is_429_on_every_trigger_endpoint_before_any_run(limited, auth_manager):
    """Airflow's trigger endpoint (behind the guard), the checked trigger and retry share one triggers bucket."""
    _, bob = someone(auth_manager)
    app, triggered = airflow()
    rest = TestClient(app)
    fresh_minute()
    first = [rest.post("/api/v2/dags/transcode_video/dagRuns", json={"logical_date": None, "conf": GOOD},
                       headers=bob) for _ in range(2)]
    assert [a.status_code for a in first] == [200, 200] and len(triggered) == 2, first[-1].text
    assert [a.headers["RateLimit-Remaining"] for a in first] == ["1", "0"]  # on Airflow's own answer
    third = rest.post("/api/v2/dags/transcode_video/dagRuns", json={"logical_date": None, "conf": GOOD},
                      headers=bob)
    assert third.status_code == 429 and len(triggered) == 2, third.text
    assert third.json()["limit"] == "rate_triggers_per_minute" and int(third.headers["Retry-After"]) >= 1
    client = vodflow_app()
    checked = client.post("/api/videos", json={**GOOD, "ladderr": "x"}, headers=bob)  # a 400 otherwise
    assert checked.status_code == 429 and checked.json()["limit"] == "rate_triggers_per_minute", checked.text
    retry = client.post("/api/videos/no-such-video/retry", headers=bob)  # a 404 otherwise
    assert retry.status_code == 429, retry.text
    print(f"triggers: 2 through Airflow's endpoint, 3rd → 429; checked trigger and retry → 429; runs {len(triggered)}")


def add_runs(user: str, states: list[str]) -> None:
    from airflow import settings
    from airflow.models.dagrun import DagRun

    now = datetime.now(UTC)
    with settings.engine.begin() as conn:
        conn.execute(sa.insert(DagRun.__table__), [
            {"dag_id": "transcode_video", "run_id": f"manual__{uuid.uuid4().hex}", "run_type": "manual",
             "state": state, "triggering_user_name": user, "run_after": now, "data_interval_start": None,
             "data_interval_end": None} for state in states])


def test_a_quota_refusal_names_the_quota(limited, auth_manager, monkeypatch):
    name, carol = someone(auth_manager)
    add_runs(name, ["queued", "running", "success", "failed"])  # two in flight: the quota
    client = vodflow_app()
    refused = client.post("/api/videos", json=GOOD, headers=carol)
    assert refused.status_code == 429, refused.text
    assert {k: refused.json()[k] for k in ("limit", "value", "used")} == {
        "limit": "quota_videos_in_flight", "value": 2, "used": 2}
    assert refused.headers["Retry-After"] == "60" and "quota_videos_in_flight" in refused.json()["detail"]
    assert client.post("/api/uploads", json=UPLOAD, headers=carol).status_code == 429

    monkeypatch.setenv("AIRFLOW__VODFLOW__QUOTA_BYTES_PER_DAY", "2500")
    load_settings.cache_clear()
    _, dave = someone(auth_manager)
    sizes = [client.post("/api/uploads", json={**UPLOAD, "size": size}, headers=dave) for size in (1000, 1000)]
    assert [s.status_code for s in sizes] == [201, 201]
    over = client.post("/api/uploads", json={**UPLOAD, "size": 600}, headers=dave)
    assert over.status_code == 403 and "Retry-After" not in over.headers, over.text
    assert {k: over.json()[k] for k in ("limit", "value", "used")} == {
        "limit": "quota_bytes_per_day", "value": 2500, "used": 2000}
    # The refused grant counted nothing, not even in the uploads rate: the last 500 bytes still fit.
    assert client.post("/api/uploads", json={**UPLOAD, "size": 500}, headers=dave).status_code == 201


def test_refusals_are_in_the_metrics(limited, auth_manager):
    _, erin = someone(auth_manager)
    client = vodflow_app()

    def refusals() -> dict[str, float]:
        scraped = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        assert scraped.status_code == 200, scraped.text
        return {s.labels["reason"]: s.value for f in text_string_to_metric_families(scraped.text)
                for s in f.samples if s.name == "vodflow_limit_refusals_total"}

    fresh_minute()
    before = refusals()
    answers = [client.post("/api/uploads", json=UPLOAD, headers=erin).status_code for _ in range(5)]
    assert answers == [201, 201, 201, 429, 429]
    after = refusals()
    assert after["rate_uploads_per_minute"] - before.get("rate_uploads_per_minute", 0) == 2
    print(f"metrics: vodflow_limit_refusals_total {after}")


# Two api-server processes ---------------------------------------------------------------------------------------
SERVER = """
from airflow.api_fastapi import app as airflow_app
airflow_app.init_auth_manager()
from vodflow.web.api import app
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def two_servers(limited, tmp_path: Path) -> Iterator[list[str]]:
    """Two uvicorn processes serving vodflow's app, each with its own engine, on one catalog and one Airflow DB."""
    (tmp_path / "limits_server.py").write_text(SERVER)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    ports = [_free_port(), _free_port()]
    procs = [subprocess.Popen([sys.executable, "-m", "uvicorn", "limits_server:app", "--port", str(port),  # noqa: S603
                               "--log-level", "warning"], env=env, start_new_session=True) for port in ports]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        deadline = time.monotonic() + 120
        for url in urls:
            while True:
                try:
                    if httpx.get(f"{url}/api/videos", timeout=2).status_code in (401, 403):
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the api-server processes did not start"
                time.sleep(0.5)
        yield urls
    finally:
        for proc in procs:
            os.killpg(proc.pid, 15)
        for proc in procs:
            proc.wait(timeout=30)


def test_two_api_server_processes_share_the_count(two_servers, auth_manager):
    """``rate_uploads_per_minute`` 3 (N): 1 grant on one process, 2 + 1 on the other: the last is refused."""
    _, frank = someone(auth_manager)
    first, second = two_servers
    fresh_minute()
    codes = [httpx.post(f"{url}/api/uploads", json=UPLOAD, headers=frank, timeout=30).status_code
             for url in (first, second, second, first)]
    assert codes == [201, 201, 201, 429], codes
    last = httpx.post(f"{second}/api/uploads", json=UPLOAD, headers=frank, timeout=30)
    assert last.status_code == 429 and last.json()["used"] == 3
    print(f"two processes: {codes} + {last.status_code} (1 on A, 2 on B, then A and B refused)")
