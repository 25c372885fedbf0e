"""Checks a run's conf on Airflow's own trigger endpoint, ``POST /api/v2/dags/transcode_video/dagRuns``, exactly as
the checked trigger (``POST /vodflow/api/videos``) does, before Airflow creates a run.

Airflow 3.3 validates a run's conf only against the DAG's Params, one declared param at a time; a key no param
declares is merged in as a schema-less param and always passes (``SerializedParamsDict.deep_merge``), Params
have no ``additionalProperties``, and a schema cannot resolve a callback URL's host or look up the catalog. So
the plugin adds this root middleware (``fastapi_root_middlewares``) in front of the endpoint and runs the checked
trigger's own ``check_conf`` on the body's ``conf``: unknown keys, each field's schema (``codecs`` too, and a codec
this machine's ffmpeg cannot encode), the source allowlist, a
``video_id`` that is another source's video, a ``callback_url`` to a loopback, private or link-local
address, with the same 400 and detail. A body over ``MAX_BODY`` cannot be a conf and is refused (413)
rather than waved through unchecked. Anything else (other paths, other DAGs, a body that is not JSON or has no
conf object) goes to Airflow untouched, and Airflow still checks the schema. ``register`` repeats the checks for
runs started any other way (e.g. `airflow dags trigger`, which writes the run into the database itself): they
fail at once as ``invalid_request``.

The checks run only for a caller Airflow will let trigger the DAG: the guard authenticates and authorises first,
exactly as the endpoint's own dependency (``requires_access_dag``) does: the Bearer token, else the user a trusted
middleware already resolved from the ``_token`` cookie, else that cookie. Any other caller goes to Airflow
unchanged, which answers 401/403 itself: a refusal that resolves a host name, looks up the catalog or applies the
allowlist must never answer an anonymous caller (an oracle for internal names, video ids and the allowlist, and a
thread and a catalog connection per request). Only the 413 comes before authentication: it reveals nothing.

For a caller allowed to trigger, the trigger is counted against their rate limit and in-flight quota
(``web.ratelimits``) before the conf checks: over it, 429 with ``Retry-After``; within it, Airflow's answer carries
the RateLimit fields.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import sqlalchemy as sa
from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import USER_INJECTED_BY_TRUSTED_MIDDLEWARE, resolve_user_from_token
from airflow.models.dag import DagModel
from fastapi import HTTPException
from fastapi.security.utils import get_authorization_scheme_param
from starlette.requests import Request

from vodflow.catalog import is_disconnect
from vodflow.dag_ids import TRANSCODE_VIDEO
from vodflow.request import RequestError
from vodflow.settings import load_settings
from vodflow.web.ratelimits import Limiter, LimitRefused
from vodflow.web.trigger import check_conf, refusal_detail

log = logging.getLogger(__name__)
TRIGGER_PATH = f"/api/v2/dags/{TRANSCODE_VIDEO}/dagRuns"
MAX_BODY = 1 << 20  # a conf is a few kB (20 captions of 1,100-character URIs: ~25 kB)
# A refused body is still read (and dropped) up to this much, so that the client, still sending, gets the 413
# instead of a connection reset; beyond it the connection is simply closed after the answer.
DRAIN_LIMIT = 64 << 20


class TriggerConfGuard:
    """A pure ASGI middleware (the body is read once and replayed to Airflow)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or route_path(scope).rstrip("/") != TRIGGER_PATH:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > DRAIN_LIMIT:
            await _too_large(send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            more = message.get("more_body", False)
            if size > DRAIN_LIMIT:
                break
            if size <= MAX_BODY:
                chunks.append(chunk)
        if size > MAX_BODY:
            await _too_large(send)
            return
        body = b"".join(chunks)
        user = await trigger_user(scope)
        extra: dict[str, str] = {}
        if user is not None:
            answer = await _over_limit(user)  # counted first: a flood is refused before any DNS or catalog read
            if isinstance(answer, tuple):
                await _send_json(send, *answer)
                return
            extra = answer
            refused = await _refusal(body)
            if refused is not None:
                await _send_json(send, *refused, extra)
                return
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], receive),
                       _with_headers(send, extra))


def route_path(scope: dict[str, Any]) -> str:
    """The path Airflow routes on. Under an ``[api] base_url`` with a path, Airflow's app has that path as its ASGI
    ``root_path`` and ``scope["path"]`` still carries it (what Starlette's router strips too)."""
    path, root = scope["path"], scope.get("root_path", "").rstrip("/")
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root):]
    return path


async def trigger_user(scope: dict[str, Any]) -> BaseUser | None:
    """The caller, if Airflow's own dependency on the trigger endpoint will let them trigger ``transcode_video``;
    None for anyone it answers 401 or 403."""
    request = Request(scope)
    scheme, credentials = get_authorization_scheme_param(request.headers.get("Authorization"))
    try:
        if scheme.lower() == "bearer" and credentials:  # an explicit credential wins over the session cookie
            user: BaseUser = await resolve_user_from_token(credentials)
        else:
            cached = getattr(request.state, "user", None)
            trusted = getattr(request.state, "user_authenticated_via", None) is USER_INJECTED_BY_TRUSTED_MIDDLEWARE
            user = cached if cached and trusted else await resolve_user_from_token(
                request.cookies.get(COOKIE_NAME_JWT_TOKEN))
    except HTTPException:
        return None
    # In a thread, as Airflow runs its dependency: the team lookup reads Airflow's database, and an auth manager
    # may too.
    return user if await asyncio.to_thread(_authorized, user) else None


def _authorized(user: BaseUser) -> bool:
    details = DagDetails(id=TRANSCODE_VIDEO, team_name=DagModel.get_team_name(TRANSCODE_VIDEO))
    return get_auth_manager().is_authorized_dag(method="POST", access_entity=DagAccessEntity.RUN, details=details,
                                                user=user)


def _content_length(scope: dict[str, Any]) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send: Any) -> None:
    await _send_json(send, 413, {"detail": f"the request body is over {MAX_BODY:,} bytes: a run's conf is never "
                                           "that large"})


async def _refusal(body: bytes) -> tuple[int, dict[str, Any]] | None:
    """(status, body) of the refusal when the conf cannot start a run; None: let Airflow judge the request."""
    try:
        conf = json.loads(body).get("conf")
    except (ValueError, AttributeError):
        return None
    if not isinstance(conf, dict):
        return None
    try:  # in a thread: it resolves the callback's host and reads the catalog
        await asyncio.to_thread(check_conf, conf, load_settings())
    except RequestError as exc:
        return 400, {"detail": refusal_detail(exc)}
    except sa.exc.DBAPIError as exc:
        if not is_disconnect(exc):
            raise
        log.warning("Catalog database unavailable for a trigger of %s: %s", TRANSCODE_VIDEO, exc.orig)
        return 503, {"detail": "the catalog database is unavailable; retry shortly"}
    return None


async def _over_limit(user: BaseUser) -> dict[str, str] | tuple[int, dict[str, Any], dict[str, str]]:
    """The RateLimit fields to add to Airflow's answer, or the refusal (status, body, headers) to send instead."""
    try:
        return await asyncio.to_thread(lambda: Limiter().admit_trigger(user))
    except LimitRefused as exc:
        return exc.status, exc.body(), exc.headers()
    except sa.exc.DBAPIError as exc:
        if not is_disconnect(exc):
            raise
        log.warning("Catalog database unavailable for a trigger's limits: %s", exc.orig)
        return 503, {"detail": "the catalog database is unavailable; retry shortly"}, {}


def _with_headers(send: Any, extra: dict[str, str]) -> Any:
    """``send`` adding ``extra`` to the answer's headers (the RateLimit fields on Airflow's own answer)."""
    if not extra:
        return send
    added = [(name.lower().encode(), value.encode()) for name, value in extra.items()]

    async def sending(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *added]}
        await send(message)

    return sending


def _replay(messages: list[dict[str, Any]], receive: Any) -> Any:
    """``messages`` (what the guard read), then the client's own ``receive``: a disconnect still reaches Airflow
    (a streaming answer stops when its client goes away), never one made up here."""
    pending = list(messages)

    async def replayed() -> dict[str, Any]:
        return pending.pop(0) if pending else await receive()

    return replayed


async def _send_json(send: Any, status: int, payload: dict[str, Any], extra: dict[str, str] | None = None) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in (extra or {}).items()]
    if status == 503:
        headers.append((b"retry-after", b"5"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
