"""The plugin API's documentation (OpenAPI schema, Swagger UI, ReDoc) behind the same login as the API itself.

FastAPI serves ``/docs``, ``/redoc`` and ``/openapi.json`` to anyone unless told otherwise, and they describe
every route, body and field of the API. So the app is built with them off (``DOCS_OFF``) and ``add_docs`` serves
them again under the same paths, each depending on the caller's right to read the API (401 without a token,
403 without the permission). In a browser logged in to Airflow the pages work as before: the Swagger UI and
ReDoc fetch the schema from the same origin, with the UI's session cookie.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

DOCS_OFF: dict[str, Any] = {"docs_url": None, "redoc_url": None, "openapi_url": None}
OPENAPI_PATH, SWAGGER_PATH, REDOC_PATH = "/openapi.json", "/docs", "/redoc"


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def add_docs(app: FastAPI, allowed: Any) -> None:
    """Serve the schema and both documentation pages on ``app``, each behind the ``allowed`` dependency."""

    @app.get(OPENAPI_PATH, dependencies=[allowed], include_in_schema=False)
    def openapi_schema(request: Request) -> JSONResponse:
        schema = app.openapi()
        root = _root(request)
        if root and root not in {s.get("url") for s in schema.get("servers", [])}:
            schema = {**schema, "servers": [{"url": root}, *schema.get("servers", [])]}
        return JSONResponse(schema)

    @app.get(SWAGGER_PATH, dependencies=[allowed], include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=_root(request) + OPENAPI_PATH, title=f"{app.title} - Swagger UI")

    @app.get(REDOC_PATH, dependencies=[allowed], include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(openapi_url=_root(request) + OPENAPI_PATH, title=f"{app.title} - ReDoc")
