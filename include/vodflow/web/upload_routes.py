"""Direct-to-S3 upload routes: a presigned PUT for small files, S3 multipart above ``multipart_threshold_bytes``
(or when asked), with status (resume), complete and abort. Uploading needs permission to trigger
``transcode_video``; the video never passes through Airflow."""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import APIRouter, Body, Depends, HTTPException, Response

from vodflow.dag_ids import TRANSCODE_VIDEO
from vodflow.settings import load_settings
from vodflow.storage import Storage
from vodflow.triggers import multipart
from vodflow.triggers.uploads import UploadRequestError, check_request, grant_upload
from vodflow.web.ratelimits import Limiter

log = logging.getLogger(__name__)
router = APIRouter()
CanTrigger = Depends(requires_access_dag("POST", DagAccessEntity.RUN, TRANSCODE_VIDEO))


STORAGE_REUSE_SECONDS = 300.0
_kept: dict[tuple[str, str], tuple[float, Storage]] = {}


def _storage() -> Storage:
    """This process's Storage for upload requests, kept for ``STORAGE_REUSE_SECONDS``: its clients (≈ 0.3 s to
    build, the presigning one included) are built once, not per grant; a changed connection is used within 5 min."""
    settings = load_settings()
    key = (settings.aws_conn_id, settings.bucket)
    now = time.monotonic()
    kept = _kept.get(key)
    if kept is None or now - kept[0] > STORAGE_REUSE_SECONDS:
        kept = _kept[key] = (now, Storage(*key))
    return kept[1]


def _grant(storage: Storage, upload_id: str) -> multipart.MultipartGrant:
    try:
        return multipart.load(storage, upload_id)
    except multipart.UploadNotFound:
        raise HTTPException(status_code=404, detail=f"No open upload {upload_id!r}.") from None


@router.post("/api/uploads", status_code=201, dependencies=[CanTrigger])
def create_upload(user: GetUserDep, response: Response, body: Annotated[dict[str, Any], Body(examples=[
        {"filename": "holiday.mp4", "content_type": "video/mp4", "size": 73400320}])]) -> dict[str, Any]:
    """A presigned PUT URL for a fresh key under ``uploads/`` (``method: PUT``), or above
    ``multipart_threshold_bytes`` (or with ``"multipart": true``) a multipart upload (``method: multipart``):
    one presigned URL per part, then ``POST /api/uploads/{id}/complete`` with the parts' ETags.

    S3 checks the signed Content-Type (PUT) and Content-Length (PUT and every part), so only the declared type
    and exact size are accepted, until ``expires_at``. The upload watcher starts the transcode when it lands.
    Counted against the caller's uploads a minute and bytes a day (``web.ratelimits``) before anything is granted.
    """
    settings = load_settings()
    try:
        request = check_request(body, settings.limits.max_size_bytes)
    except UploadRequestError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    wants = body.get("multipart")
    if wants is not None and not isinstance(wants, bool):
        raise HTTPException(status_code=422, detail="multipart must be true or false")
    response.headers.update(Limiter(settings).admit_upload(user, request.size))  # LimitRefused: 429/403
    storage = _storage()
    if wants or (wants is None and request.size > settings.multipart_threshold_bytes) \
            or request.size > multipart.MAX_SINGLE_PUT_BYTES:
        answer = multipart.start(storage, request, settings.upload_url_expiry_seconds,
                                 settings.upload_part_size_bytes)
        log.info("Multipart upload granted: %s (%s, %d bytes, %d parts)", answer["source"], request.content_type,
                 request.size, len(answer["parts"]))
        return answer
    grant = grant_upload(storage, request, settings.upload_url_expiry_seconds)
    log.info("Upload granted: s3://%s/%s (%s, %d bytes)", settings.bucket, grant.key, request.content_type,
             request.size)
    return grant.to_dict()


@router.get("/api/uploads/{upload_id}", dependencies=[CanTrigger])
def upload_status(upload_id: str) -> dict[str, Any]:
    """The parts S3 has received and fresh URLs for the missing ones: resume from here."""
    storage = _storage()
    return multipart.status(storage, _grant(storage, upload_id), load_settings().upload_url_expiry_seconds)


@router.post("/api/uploads/{upload_id}/complete", dependencies=[CanTrigger])
def complete_upload(upload_id: str, body: Annotated[dict[str, Any], Body(examples=[
        {"parts": [{"part_number": 1, "etag": "9b2cf535f27731c974343645a3985328"}]}])]) -> dict[str, Any]:
    """Assemble the object once every part is there with its size and ETag (409 says which is not)."""
    storage = _storage()
    grant = _grant(storage, upload_id)
    try:
        done = multipart.complete(storage, grant, body)
    except multipart.UploadConflict as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    log.info("Multipart upload complete: %s (%d bytes)", done["source"], done["size"])
    return done


@router.delete("/api/uploads/{upload_id}", status_code=204, dependencies=[CanTrigger])
def abort_upload(upload_id: str) -> Response:
    """Abort: S3 drops the parts received so far."""
    storage = _storage()
    multipart.abort(storage, _grant(storage, upload_id))
    return Response(status_code=204)
