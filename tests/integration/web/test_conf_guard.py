"""The guard on Airflow's trigger endpoint (``TriggerConfGuard``) in front of a FastAPI app whose trigger route
carries Airflow's own auth dependency (``requires_access_dag("POST", RUN)``), with the real SimpleAuthManager and
real JWTs: a caller Airflow refuses gets Airflow's 401/403, never the guard's 400 (which resolves the callback's
host: "localhost resolves to 127.0.0.1" was an oracle for anyone); a caller allowed to trigger gets the 400; and
the guard also holds when Airflow runs under a base_url with a path (ASGI root_path)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
from airflow.api_fastapi.core_api.security import requires_access_dag
from fastapi import Body, Depends, FastAPI
from fastapi.testclient import TestClient

from vodflow.web.conf_guard import TriggerConfGuard

pytestmark = pytest.mark.integration
TRIGGER = "/api/v2/dags/transcode_video/dagRuns"
SSRF = {"source": "s3://vodflow/uploads/a.mp4", "callback_url": "http://localhost:9/hook"}
GOOD = {"source": "s3://vodflow/uploads/a.mp4", "callback_url": "https://93.184.215.14/hook"}


@pytest.fixture(scope="module")
def auth_manager() -> Iterator[Any]:
    """Airflow's metadata tables (the dependency looks up the DAG's team) and a SimpleAuthManager with an admin
    and a viewer (who may not trigger runs)."""
    from airflow import settings
    from airflow.api_fastapi import app as airflow_app
    from airflow.models import import_all_models
    from airflow.models.base import Base

    import_all_models()
    Base.metadata.create_all(settings.engine)
    saved = os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS")
    os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = "admin:admin,viewer:viewer"
    try:
        yield airflow_app.init_auth_manager()
    finally:
        airflow_app.purge_cached_app()
        if saved is None:
            os.environ.pop("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", None)
        else:
            os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = saved


def airflow(root_path: str = "") -> tuple[FastAPI, list[dict]]:
    """Airflow's trigger route as far as authentication goes: its dependency, then the body it was given."""
    app = FastAPI(root_path=root_path)
    triggered: list[dict] = []

    @app.post("/api/v2/dags/{dag_id}/dagRuns",
              dependencies=[Depends(requires_access_dag(method="POST", access_entity=DagAccessEntity.RUN))])
    def trigger_dag_run(dag_id: str, body: dict = Body()) -> dict:  # noqa: B008
        triggered.append(body)
        return {"dag_id": dag_id, "conf": body.get("conf")}

    app.add_middleware(TriggerConfGuard)
    return app, triggered


def token(auth_manager: Any, role: str) -> str:
    return auth_manager.generate_jwt(SimpleAuthManagerUser(username=role, role=role))


def post(client: TestClient, conf: dict, path: str = TRIGGER, **kwargs: Any) -> Any:
    return client.post(path, json={"logical_date": None, "conf": conf}, **kwargs)


def test_a_caller_airflow_refuses_gets_airflows_answer_not_the_guards(auth_manager):
    app, triggered = airflow()
    client = TestClient(app)
    anonymous = post(client, SSRF)
    assert (anonymous.status_code, anonymous.json()["detail"]) == (401, "Not authenticated"), anonymous.text
    forged = post(client, SSRF, headers={"Authorization": "Bearer forged"})
    assert (forged.status_code, forged.json()["detail"]) == (403, "Invalid JWT token"), forged.text
    viewer = post(client, SSRF, headers={"Authorization": f"Bearer {token(auth_manager, 'viewer')}"})
    assert (viewer.status_code, viewer.json()["detail"]) == (403, "Forbidden"), viewer.text
    assert "resolves" not in anonymous.text + forged.text + viewer.text and triggered == []


def test_a_caller_allowed_to_trigger_gets_the_guards_refusal_by_header_or_cookie(auth_manager):
    app, triggered = airflow()
    admin = token(auth_manager, "admin")
    by_header = post(TestClient(app), SSRF, headers={"Authorization": f"Bearer {admin}"})
    assert by_header.status_code == 400 and by_header.json()["detail"].startswith("callback_url"), by_header.text
    by_cookie = post(TestClient(app, cookies={"_token": admin}), SSRF)
    assert by_cookie.status_code == 400 and by_cookie.json()["detail"] == by_header.json()["detail"]
    # An explicit header wins over the cookie, as in Airflow's get_user: a forged one is refused by Airflow.
    forged = post(TestClient(app, cookies={"_token": admin}), SSRF, headers={"Authorization": "Bearer forged"})
    assert forged.status_code == 403, forged.text
    accepted = post(TestClient(app), GOOD, headers={"Authorization": f"Bearer {admin}"})
    assert accepted.status_code == 200 and triggered == [{"logical_date": None, "conf": GOOD}], accepted.text


def test_the_guard_holds_under_a_base_url_with_a_path(auth_manager):
    """``[api] base_url = http://host/airflow``: Airflow's app has root_path /airflow, the path keeps it."""
    app, triggered = airflow(root_path="/airflow")
    client = TestClient(app)
    admin = {"Authorization": f"Bearer {token(auth_manager, 'admin')}"}
    refused = post(client, SSRF, "/airflow" + TRIGGER, headers=admin)
    assert refused.status_code == 400 and refused.json()["detail"].startswith("callback_url"), refused.text
    unknown = post(client, {**GOOD, "ladderr": "x"}, "/airflow" + TRIGGER + "/", headers=admin)
    assert unknown.status_code == 400 and unknown.json()["detail"].startswith("ladderr") and not triggered
    assert post(client, GOOD, "/airflow" + TRIGGER, headers=admin).status_code == 200 and len(triggered) == 1
    assert post(client, SSRF, "/airflow" + TRIGGER).status_code == 401


@pytest.mark.parametrize("conf,field", [
    ({**GOOD, "ladderr": "x"}, "ladderr"),
    ({**GOOD, "callback_url": "http://127.0.0.1:9/hook"}, "callback_url"),
    ({**GOOD, "callback_url": "http://169.254.169.254/latest"}, "callback_url"),
    ({**GOOD, "callback_url": "http://[::1]:9/"}, "callback_url"),
    ({**GOOD, "callback_url": "http://10.0.0.8/hook"}, "callback_url"),
    ({**GOOD, "loudness": 3}, "loudness"),
    ({**GOOD, "loudness": -16, "loudness_true_peak": 2}, "loudness_true_peak"),
])
def test_a_caller_allowed_to_trigger_is_refused_what_the_checked_trigger_refuses(auth_manager, conf, field):
    app, triggered = airflow()
    refused = post(TestClient(app), conf, headers={"Authorization": f"Bearer {token(auth_manager, 'admin')}"})
    assert refused.status_code == 400 and refused.json()["detail"].startswith(field), refused.text
    assert triggered == []
