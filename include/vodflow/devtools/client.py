"""A small client for Airflow's REST API v2, as apps use it: a JWT from /auth/token, then plain JSON calls."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests

from vodflow.errors import VodflowError

T = TypeVar("T")

TERMINAL_RUN_STATES = {"success", "failed"}


class ApiError(VodflowError, RuntimeError):
    def __init__(self, response: requests.Response) -> None:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        self.message = f"{response.request.method} {response.url} -> {response.status_code}: {detail}"
        Exception.__init__(self, self.message)
        self.status_code = response.status_code
        self.detail = detail


@dataclass
class AirflowClient:
    base_url: str
    username: str
    password: str
    timeout: float = 30.0
    _token: str | None = field(default=None, repr=False)
    _session: requests.Session = field(default_factory=requests.Session, repr=False)

    def token(self) -> str:
        if self._token is None:
            response = self._session.post(f"{self.base_url}/auth/token", timeout=self.timeout,
                                          json={"username": self.username, "password": self.password})
            if response.status_code not in (200, 201):
                raise ApiError(response)
            self._token = response.json()["access_token"]
        return self._token

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
        response = self._session.request(method, f"{self.base_url}{path}", headers=headers,
                                         timeout=self.timeout, **kwargs)
        if response.status_code == 401 and self._token:
            self._token = None  # expired: one fresh token, one more try
            headers["Authorization"] = f"Bearer {self.token()}"
            response = self._session.request(method, f"{self.base_url}{path}", headers=headers,
                                             timeout=self.timeout, **kwargs)
        if response.status_code >= 400:
            raise ApiError(response)
        return response.json() if response.content else None

    def trigger(self, dag_id: str, conf: dict[str, Any], run_id: str | None = None, attempts: int = 1) -> str:
        """Start a run. With a ``run_id`` of your own, a trigger whose answer was lost (timeout, 5xx) can be sent
        again safely: a second create of the same run is a 409, which means it exists."""
        body: dict[str, Any] = {"logical_date": None, "conf": conf}
        if run_id:
            body["dag_run_id"] = run_id

        def send() -> str:
            return self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

        if not run_id:  # without an id of its own a second send could start a second run
            return send()
        return self._sent_again(send, attempts, network=True, on_conflict=lambda: run_id)

    def set_paused(self, dag_id: str, paused: bool = True, attempts: int = 4) -> None:
        """Pause (or unpause) a DAG; sent again on a 5xx (the embedded stack's SQLite, locked for up to 30 s)."""
        self._sent_again(lambda: self.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": paused}),
                         attempts)

    def _sent_again(self, send: Callable[[], T], attempts: int, network: bool = False,
                    on_conflict: Callable[[], T] | None = None) -> T:
        """``send()``, sent again on a 5xx (and with ``network`` on a connection error or timeout) up to
        ``attempts`` times, 2 s × the attempt apart. ``on_conflict``: the answer when a later attempt gets a 409
        (an earlier one did land)."""
        for attempt in range(1, attempts + 1):
            try:
                return send()
            except ApiError as exc:
                if on_conflict is not None and attempt > 1 and exc.status_code == 409:
                    return on_conflict()
                if exc.status_code < 500 or attempt == attempts:
                    raise
            except requests.RequestException:
                if not network or attempt == attempts:
                    raise
            time.sleep(2.0 * attempt)
        raise AssertionError("unreachable")

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{requests.utils.quote(run_id, safe='')}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        quoted = requests.utils.quote(run_id, safe="")
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances",
                            params={"limit": 1000})["task_instances"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 900.0, poll: float = 1.0,
                     on_poll: Any = None) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(dag_id, run_id)
            if on_poll:
                on_poll(run)
            if run["state"] in TERMINAL_RUN_STATES:
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {run['state']} after {timeout:.0f} s")
            time.sleep(poll)

    def wait_for_dag(self, dag_id: str, timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.request("GET", f"/api/v2/dags/{dag_id}")
            except ApiError as exc:
                if exc.status_code != 404 or time.monotonic() > deadline:
                    raise
            time.sleep(1.0)
