"""Direct-to-S3 uploads: an app asks for a presigned PUT URL and sends the file straight to the bucket.

The video never passes through Airflow. The URL is scoped to one fresh key under ``uploads/`` and signed with
the content type and exact size the app declared, so S3 itself refuses any other type or size, and it expires.
The watcher (``watch_uploads``) starts the transcode when the object lands. Request checks are pure.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from vodflow.codec import Coded
from vodflow.errors import BadInput, Refused
from vodflow.layout import UPLOADS_PREFIX
from vodflow.media.source.probe import check_size

MAX_FILENAME_CHARS = 120
ALLOWED_GENERIC_TYPES = ("application/octet-stream",)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")


class UploadRequestError(Refused, ValueError):
    """The upload request cannot be granted; the message says why, for the app's developer."""


@dataclass(frozen=True)
class UploadRequest:
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class UploadGrant(Coded):
    """What the app is told (the API's JSON: ``expires_at`` as ISO 8601, UTC as ``Z``)."""

    key: str
    source: str
    url: str
    method: str
    headers: dict[str, str]
    content_length: int
    expires_at: datetime


def sanitize_filename(name: str) -> str:
    """A safe last path segment: no folders, no control or shell-special characters, no leading dot or dash."""
    base = re.split(r"[\\/]", unicodedata.normalize("NFKC", str(name)))[-1]
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    stem = _UNSAFE.sub("_", stem).strip("._-")
    ext = _UNSAFE.sub("", ext)[:10].lower()
    stem = stem[: MAX_FILENAME_CHARS - len(ext) - 1] or "upload"
    return f"{stem}.{ext}" if ext else stem


def check_request(body: dict[str, Any], max_size_bytes: int) -> UploadRequest:
    """Validate what the app declared about the file; UploadRequestError explains a refusal."""
    filename = body.get("filename")
    if not isinstance(filename, str) or not filename.strip() or len(filename) > 1024:
        raise UploadRequestError("filename is required (a string of at most 1024 characters)")
    content_type = str(body.get("content_type") or "application/octet-stream").strip().lower()
    if not _CONTENT_TYPE.match(content_type) or not (
        content_type.startswith("video/") or content_type in ALLOWED_GENERIC_TYPES
    ):
        raise UploadRequestError(f"content_type must be video/* or application/octet-stream, not {content_type!r}")
    size = body.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise UploadRequestError("size is required: the exact file size in bytes (a positive integer)")
    try:
        check_size(size, max_size_bytes)
    except BadInput as exc:
        raise UploadRequestError(exc.message) from None
    return UploadRequest(sanitize_filename(filename), content_type, size)


def new_upload_key(filename: str, at: datetime | None = None) -> str:
    """``uploads/YYYY/MM/DD/<random>/<filename>``: never an existing key, and dated for humans and lifecycles."""
    at = at or datetime.now(UTC)
    return f"{UPLOADS_PREFIX}{at:%Y/%m/%d}/{uuid.uuid4().hex}/{filename}"


def grant_upload(storage: Any, request: UploadRequest, expires_in: int) -> UploadGrant:
    """Presign a PUT for a fresh key; ``storage`` is a :class:`vodflow.storage.Storage`."""
    key = new_upload_key(request.filename)
    url = storage.presigned_put(key, request.content_type, request.size, expires_in)
    return UploadGrant(key=key, source=f"s3://{storage.bucket}/{key}", url=url, method="PUT",
                       headers={"Content-Type": request.content_type}, content_length=request.size,
                       expires_at=datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=expires_in))
