"""Multipart, resumable direct-to-S3 uploads: what a source above a single PUT's 5 GB needs (and what any large
upload over a flaky link wants).

``start``: S3 CreateMultipartUpload for a fresh key under ``uploads/``, and one presigned UploadPart URL per
part, each signed with its exact length (so S3 refuses a part of another size). ``status``: the parts S3 has,
and fresh URLs for the missing ones — a client that lost its connection (or its URLs) resumes from there.
``complete``: every planned part present with the planned size and the ETag the client saw, total = the
granted size, then CompleteMultipartUpload. ``abort``: AbortMultipartUpload. ``abort_stale``: unfinished
uploads older than ``upload_abort_after_hours`` are aborted (their parts cost storage until then).

The grant (key, UploadId, size, part size) is a small private JSON object at ``upload-grants/<id>.json`` in
the bucket: outside ``uploads/`` (the watcher never sees it), no database needed, removed on complete/abort.
Planning is pure; everything else goes through :class:`vodflow.storage.Storage`.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from vodflow.errors import Refused
from vodflow.layout import UPLOADS_PREFIX
from vodflow.triggers.uploads import UploadRequest, new_upload_key

MiB = 1024 * 1024
MIN_PART_BYTES = 5 * MiB  # S3: every part but the last
MAX_PART_BYTES = 5 * 1024 * MiB
MAX_PARTS = 10_000
MAX_OBJECT_BYTES = 5 * 1024 * 1024 * MiB  # S3's object limit, 5 TiB
MAX_SINGLE_PUT_BYTES = 5 * 1000 * 1000 * 1000  # S3 refuses a single PUT above 5 GB
GRANTS_PREFIX = "upload-grants/"
_ID = re.compile(r"^[0-9a-f]{32}$")


class UploadNotFound(Refused, LookupError):
    """No open upload with this id (never granted, completed, aborted or expired)."""


class UploadConflict(Refused, ValueError):
    """The upload cannot be completed as asked: a part missing, of the wrong size or ETag, too many bytes."""


def part_size_for(size: int, preferred: int = 16 * MiB) -> int:
    """The part size: at least ``preferred`` and 5 MiB, large enough for ≤ 10,000 parts, a whole MiB."""
    if size <= 0 or size > MAX_OBJECT_BYTES:
        raise ValueError(f"a multipart upload is 1 byte to {MAX_OBJECT_BYTES} bytes, not {size}")
    needed = max(preferred, MIN_PART_BYTES, math.ceil(size / MAX_PARTS))
    return min(math.ceil(needed / MiB) * MiB, MAX_PART_BYTES)


def plan_parts(size: int, part_size: int) -> list[tuple[int, int]]:
    """(part number, length) for every part: all ``part_size`` except a shorter last one."""
    count = math.ceil(size / part_size)
    return [(n, part_size if n < count else size - part_size * (count - 1)) for n in range(1, count + 1)]


@dataclass(frozen=True)
class MultipartGrant:
    """What was granted: kept in the bucket while the upload is open."""

    id: str
    key: str
    upload_id: str
    size: int
    part_size: int
    content_type: str
    created_at: str

    @property
    def parts(self) -> list[tuple[int, int]]:
        return plan_parts(self.size, self.part_size)

    def source(self, bucket: str) -> str:
        return f"s3://{bucket}/{self.key}"


def _grant_key(upload: str) -> str:
    return f"{GRANTS_PREFIX}{upload}.json"


def _part_urls(storage: Any, grant: MultipartGrant, numbers: set[int] | None, expires_in: int) -> list[dict]:
    """Every wanted part's URL, signed together (``Storage.presigned_parts``: 10,000 parts in well under 1 s)."""
    wanted = [(n, length) for n, length in grant.parts if numbers is None or n in numbers]
    urls = storage.presigned_parts(grant.key, grant.upload_id, wanted, expires_in)
    return [{"part_number": n, "size": length, "url": url} for (n, length), url in zip(wanted, urls, strict=True)]


def start(storage: Any, request: UploadRequest, expires_in: int, preferred_part: int = 16 * MiB) -> dict[str, Any]:
    """Open a multipart upload for a fresh key; the answer has every part's URL."""
    part_size = part_size_for(request.size, preferred_part)
    key = new_upload_key(request.filename)
    upload_id = storage.create_multipart(key, request.content_type)
    grant = MultipartGrant(id=uuid.uuid4().hex, key=key, upload_id=upload_id, size=request.size,
                           part_size=part_size, content_type=request.content_type,
                           created_at=datetime.now(UTC).isoformat())
    storage.put_json(_grant_key(grant.id), json.dumps(asdict(grant)))
    expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=expires_in)
    return {"id": grant.id, "key": key, "source": grant.source(storage.bucket), "method": "multipart",
            "size": grant.size, "part_size": part_size, "parts": _part_urls(storage, grant, None, expires_in),
            "expires_at": expires_at.isoformat().replace("+00:00", "Z")}


def load(storage: Any, upload: str) -> MultipartGrant:
    from vodflow.storage import ObjectMissing

    if not _ID.match(upload):
        raise UploadNotFound(upload)
    try:
        return MultipartGrant(**json.loads(storage.get_bytes(_grant_key(upload))))
    except ObjectMissing:
        raise UploadNotFound(upload) from None


def status(storage: Any, grant: MultipartGrant, expires_in: int) -> dict[str, Any]:
    """Parts received (number, size, ETag) and fresh URLs for the missing ones: how a client resumes."""
    received = storage.list_parts(grant.key, grant.upload_id)
    planned = dict(grant.parts)
    good = {p["PartNumber"] for p in received if planned.get(p["PartNumber"]) == p["Size"]}
    return {"id": grant.id, "key": grant.key, "source": grant.source(storage.bucket), "size": grant.size,
            "part_size": grant.part_size,
            "received": [{"part_number": p["PartNumber"], "size": p["Size"], "etag": p["ETag"]} for p in received],
            "received_bytes": sum(p["Size"] for p in received),
            "missing": _part_urls(storage, grant, set(planned) - good, expires_in)}


def _client_parts(body: Any) -> dict[int, str]:
    parts = body.get("parts") if isinstance(body, dict) else None
    if not isinstance(parts, list) or not parts:
        raise ValueError("parts is required: [{\"part_number\": 1, \"etag\": \"…\"}, …]")
    found: dict[int, str] = {}
    for part in parts:
        number, etag = (part.get("part_number"), part.get("etag")) if isinstance(part, dict) else (None, None)
        if isinstance(number, bool) or not isinstance(number, int) or not isinstance(etag, str) or number in found:
            raise ValueError("each part needs a unique integer part_number and a string etag")
        found[number] = etag.strip('"')
    return found


def complete(storage: Any, grant: MultipartGrant, body: Any) -> dict[str, Any]:
    """Check the parts against the grant and S3's own list, then assemble the object."""
    claimed = _client_parts(body)  # ValueError: a malformed body
    received = {p["PartNumber"]: p for p in storage.list_parts(grant.key, grant.upload_id)}
    total = sum(p["Size"] for p in received.values())
    if total > grant.size:
        raise UploadConflict(f"{total} bytes were uploaded; the grant is for {grant.size}")
    for number, length in grant.parts:
        part = received.get(number)
        if part is None:
            raise UploadConflict(f"part {number} has not been uploaded")
        if part["Size"] != length:
            raise UploadConflict(f"part {number} is {part['Size']} bytes; it must be {length}")
        if claimed.get(number) != part["ETag"]:
            raise UploadConflict(f"part {number}: the ETag given is not the one S3 has ({part['ETag']})")
    extra = (set(claimed) | set(received)) - {n for n, _ in grant.parts}
    if extra:
        raise UploadConflict(f"parts {sorted(extra)} were not granted")
    etag = storage.complete_multipart(grant.key, grant.upload_id, [(n, received[n]["ETag"]) for n, _ in grant.parts])
    storage.delete_key(_grant_key(grant.id))
    return {"id": grant.id, "key": grant.key, "source": grant.source(storage.bucket), "size": total, "etag": etag}


def abort(storage: Any, grant: MultipartGrant) -> None:
    storage.abort_multipart(grant.key, grant.upload_id)
    storage.delete_key(_grant_key(grant.id))


def abort_stale(storage: Any, older_than: timedelta, now: datetime | None = None) -> int:
    """Abort unfinished uploads under ``uploads/`` started before ``now - older_than``; drop their grants.

    An upload's age is its grant's (when vodflow granted it), else S3's ``Initiated``."""
    cutoff = (now or datetime.now(UTC)) - older_than
    granted: dict[str, tuple[str, datetime]] = {}
    for obj in storage.list_objects(GRANTS_PREFIX):
        grant = MultipartGrant(**json.loads(storage.get_bytes(obj["Key"])))
        granted[grant.upload_id] = (obj["Key"], datetime.fromisoformat(grant.created_at))
    aborted = 0
    for upload in storage.list_multipart_uploads(UPLOADS_PREFIX):
        grant_key, started = granted.pop(upload["UploadId"], (None, upload["Initiated"]))
        if started < cutoff:
            storage.abort_multipart(upload["Key"], upload["UploadId"])
            if grant_key:
                storage.delete_key(grant_key)
            aborted += 1
    for grant_key, started in granted.values():  # grants whose upload is gone already
        if started < cutoff:
            storage.delete_key(grant_key)
    return aborted
