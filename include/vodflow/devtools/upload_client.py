"""The client side of vodflow's uploads, as an app would write it: one presigned PUT, or a multipart upload that
survives a dropped connection or a killed process.

Multipart: the grant's id is remembered in a small state file (per file path, size and mtime), so running the
same upload again asks ``GET /vodflow/api/uploads/{id}`` what S3 already has and sends only the missing parts
(with fresh URLs); each part is retried with backoff; then ``complete`` with the parts' ETags.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from vodflow.devtools.client import AirflowClient, ApiError

Progress = Callable[[int, int], None]  # (bytes sent, total bytes)
PART_ATTEMPTS = 4


@dataclass
class UploadResult:
    source: str
    parts_sent: int = 0
    resumed: bool = False


def _state_path(state_dir: Path, path: Path) -> Path:
    stat = path.stat()
    digest = hashlib.sha256(f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:24]
    return state_dir / f"{digest}.json"


def _put(url: str, data: bytes, headers: dict[str, str] | None = None) -> str:
    """PUT with retries on network errors and 5xx; returns the ETag."""
    for attempt in range(PART_ATTEMPTS):
        try:
            response = requests.put(url, data=data, headers=headers or {}, timeout=600)
            if response.status_code < 500:
                response.raise_for_status()
                return response.headers.get("ETag", "").strip('"')
        except (requests.ConnectionError, requests.Timeout):
            if attempt == PART_ATTEMPTS - 1:
                raise
        time.sleep(2 ** attempt)
    response.raise_for_status()
    return ""


def upload(client: AirflowClient, path: Path, state_dir: Path, multipart: bool | None = None,
           progress: Progress | None = None, max_parts: int | None = None) -> UploadResult:
    """Upload ``path`` through the vodflow API; ``max_parts`` stops after that many parts (an interrupted run)."""
    progress = progress or (lambda sent, total: None)
    size = path.stat().st_size
    state_file = _state_path(state_dir, path)
    status: dict[str, Any] | None = None
    if state_file.exists():
        try:
            status = client.request("GET", f"/vodflow/api/uploads/{json.loads(state_file.read_text())['id']}")
        except ApiError as exc:
            if exc.status_code != 404:
                raise
            state_file.unlink()  # completed, aborted or expired: start over
    resumed = status is not None
    if status is None:
        body: dict[str, Any] = {"filename": path.name, "size": size}
        if multipart is not None:
            body["multipart"] = multipart
        grant = client.request("POST", "/vodflow/api/uploads", json=body)
        if grant["method"] == "PUT":
            _put(grant["url"], path.read_bytes(), grant.get("headers", {}))
            progress(size, size)
            return UploadResult(grant["source"], parts_sent=1)
        state_dir.mkdir(parents=True, exist_ok=True)
        state_file.write_text(json.dumps({"id": grant["id"], "source": grant["source"]}))
        status = {**grant, "received": [], "received_bytes": 0, "missing": grant["parts"]}
    etags = {p["part_number"]: p["etag"] for p in status["received"]}
    sent_bytes, sent = int(status["received_bytes"]), 0
    progress(sent_bytes, size)
    with open(path, "rb") as source:
        for part in status["missing"]:
            if max_parts is not None and sent >= max_parts:
                return UploadResult(status["source"], parts_sent=sent, resumed=resumed)
            source.seek((part["part_number"] - 1) * status["part_size"])
            etags[part["part_number"]] = _put(part["url"], source.read(part["size"]))
            sent, sent_bytes = sent + 1, sent_bytes + part["size"]
            progress(sent_bytes, size)
    done = client.request("POST", f"/vodflow/api/uploads/{status['id']}/complete",
                          json={"parts": [{"part_number": n, "etag": e} for n, e in sorted(etags.items())]})
    state_file.unlink(missing_ok=True)
    return UploadResult(done["source"], parts_sent=sent, resumed=resumed)
