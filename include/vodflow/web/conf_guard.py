"""Refuses unknown conf keys on Airflow's own trigger endpoint, ``POST /api/v2/dags/transcode_video/dagRuns``.

Airflow 3.3 validates a run's conf only against the DAG's Params, one declared param at a time; a key no param
declares is merged in as a schema-less param and always passes (``SerializedParamsDict.deep_merge``), and Params
have no ``additionalProperties``. So the plugin adds this root middleware (``fastapi_root_middlewares``) in front
of the endpoint: a body whose ``conf`` has a key the request does not know gets a 400 naming it, the same answer
the checked trigger gives, before Airflow creates a run. Anything else (other paths, other DAGs, a body that is
not JSON) goes to Airflow untouched, and Airflow still checks the schema. ``register`` repeats the check for runs
started any other way (the CLI, the trigger form of an older UI): they fail at once as ``invalid_request``.
"""

from __future__ import annotations

import json
from typing import Any

from vodflow.dag_ids import TRANSCODE_VIDEO
from vodflow.request import unknown_fields

TRIGGER_PATH = f"/api/v2/dags/{TRANSCODE_VIDEO}/dagRuns"
MAX_BODY = 1 << 20  # a conf is small; a larger body is Airflow's to refuse


class UnknownConfKeys:
    """A pure ASGI middleware (the body is read once and replayed to Airflow)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") != TRIGGER_PATH:
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        detail = _refusal(body)
        if detail is not None:
            await _send_json(send, 400, {"detail": detail})
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}]), send)


def _refusal(body: bytes) -> str | None:
    """The 400's detail when the conf has an unknown key; None: let Airflow judge the request."""
    if len(body) > MAX_BODY:
        return None
    try:
        conf = json.loads(body).get("conf")
    except (ValueError, AttributeError):
        return None
    if not isinstance(conf, dict):
        return None
    unknown = unknown_fields(conf)
    return f"conf: {unknown}" if unknown is not None else None


def _replay(messages: list[dict[str, Any]]) -> Any:
    pending = list(messages)

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    return receive


async def _send_json(send: Any, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
