"""The vodflow plugin's FastAPI app, mounted by Airflow's api-server under ``/vodflow``.

JSON API (``/api/...``) and the operator pages (``/ui/...``) that Airflow shows in its nav and as a tab on each
``transcode_video`` run. Every route depends on Airflow's own auth (a Bearer token, or the UI's session cookie
inside the Airflow UI): anonymous requests get 401/403. Reading needs read access to ``transcode_video`` runs,
uploading and retrying need permission to trigger it, deleting needs permission to edit it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Body, Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse

from vodflow import layout
from vodflow.catalog import (
    ACTIVE_STATUSES,
    FAILED,
    READY,
    VIDEO_STATUSES,
    AlreadyActive,
    Catalog,
    catalog_for_connection,
    is_disconnect,
)
from vodflow.dag_ids import TRANSCODE_VIDEO
from vodflow.errors import NEVER_RETRYABLE
from vodflow.layout import parse_source_uri
from vodflow.media.encode.codecs import H264
from vodflow.pipeline.delete import delete_video as remove_video
from vodflow.pipeline.outputs.subtitle_records import api_fields as subtitle_api_fields
from vodflow.request import RequestError, check_overrides, rerun_request
from vodflow.settings import load_settings
from vodflow.storage import Storage
from vodflow.web import media as media_routes
from vodflow.web import queue, trigger, upload_routes
from vodflow.web.codecs_view import codec_outputs, codecs_json
from vodflow.web.docs import DOCS_OFF, add_docs
from vodflow.web.isotime import iso
from vodflow.web.media import media_url as _media_url
from vodflow.web.metrics import metrics_endpoint
from vodflow.web.playable import playable_json
from vodflow.web.ratelimits import Limiter, LimitRefused
from vodflow.web.trigger import check_conf
from vodflow.web.waiting import waiting_runs, waiting_tasks

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")
CanRead = Depends(requires_access_dag("GET", DagAccessEntity.RUN, TRANSCODE_VIDEO))
CanTrigger = Depends(requires_access_dag("POST", DagAccessEntity.RUN, TRANSCODE_VIDEO))
CanEdit = Depends(requires_access_dag("PUT", None, TRANSCODE_VIDEO))
DOWNLOAD_KINDS = ("mp4", "webm", "audio")  # the outputs listed as ``downloads``, in this order
SSE_POLL_SECONDS = 0.5
SSE_HEARTBEAT_SECONDS = 15.0

app = FastAPI(title="vodflow", description="Videos transcoded by vodflow: uploads, status, progress, media.",
              **DOCS_OFF)  # served again by add_docs, behind the same login as the API
add_docs(app, CanRead)
app.include_router(trigger.router)
app.include_router(upload_routes.router)
app.include_router(media_routes.router, dependencies=[CanRead])


# A request waits this long for a restarting catalog database, then gets 503 (tasks wait much longer).
API_RECONNECT_SECONDS = 5.0


@app.exception_handler(sa.exc.DBAPIError)
async def _database_unavailable(request: Request, exc: sa.exc.DBAPIError) -> JSONResponse:
    if not is_disconnect(exc):
        raise exc
    log.warning("Catalog database unavailable for %s: %s", request.url.path, exc.orig)
    return JSONResponse({"detail": "the catalog database is unavailable; retry shortly"}, status_code=503,
                        headers={"Retry-After": "5"})


@app.exception_handler(LimitRefused)
async def _limit_refused(request: Request, exc: LimitRefused) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers())


def _catalog() -> Catalog:
    return catalog_for_connection(load_settings().catalog_conn_id, API_RECONNECT_SECONDS)


app.add_api_route("/metrics", metrics_endpoint(_catalog), methods=["GET"], include_in_schema=False)


def _storage() -> Storage:
    settings = load_settings()
    return Storage(settings.aws_conn_id, settings.bucket)


def _rendition_json(r: dict[str, Any]) -> dict[str, Any]:
    return {"name": r["name"], "status": r["status"], "progress": r["progress"], "width": r["width"],
            "height": r["height"], "video_kbps": r["video_kbps"], "audio_kbps": r["audio_kbps"],
            "bandwidth": r["bandwidth"], "average_bandwidth": r["average_bandwidth"], "codecs": r["codecs"],
            "frame_rate": r["frame_rate"], "bytes": r["bytes"], "segments": r["segments"],
            "error_message": r["error_message"], "updated_at": iso(r["updated_at"]),
            "vmaf": r.get("vmaf"), "vmaf_p5": r.get("vmaf_p5"), "codec": r.get("codec") or H264,
            "dynamic_range": r.get("dynamic_range") or "SDR"}


def video_json(request: Request, video: dict[str, Any], renditions: list[dict[str, Any]],
               line: queue.Snapshot | None = None, catalog: Catalog | None = None) -> dict[str, Any]:
    """``line``: the queue (position, expected start, ETA); None: those fields null (Airflow not readable).
    ``catalog``: to look up an active video's preview (``web.playable``); None: ``preview_url`` null."""
    progress = 100.0 if video["status"] == READY and not video["error_code"] else (
        round(sum(r["progress"] for r in renditions) / len(renditions), 1) if renditions else 0.0)
    return {
        "id": video["id"], "title": video["title"], "status": video["status"],
        "error_code": video["error_code"], "error_message": video["error_message"],
        "source_uri": video["source_uri"], "source_size": video["source_size"],
        "duration": video["duration"], "width": video["width"], "height": video["height"], "fps": video["fps"],
        "has_audio": video["has_audio"], "ladder_version": video["ladder_version"],
        "current_version": video["current_version"], "latest_version": video["latest_version"],
        "dag_run_id": video["dag_run_id"], "progress": progress, "retry_refusal": retry_refusal(video),
        "master_url": _media_url(request, video["id"], video["master_uri"]),
        "poster_url": _media_url(request, video["id"], video["poster_uri"]),
        "created_at": iso(video["created_at"]), "updated_at": iso(video["updated_at"]),
        "started_at": iso(video["started_at"]), "finished_at": iso(video["finished_at"]),
        "renditions": [_rendition_json(r) for r in renditions], **codecs_json(renditions),
        **playable_json(request, video, catalog),
        **(line.fields(video, progress) if line else {"priority": queue.video_priority(video), **queue.UNKNOWN}),
    }


def retry_refusal(video: dict[str, Any]) -> str | None:
    """Why ``POST .../retry`` refuses this video (409), or None: the page shows the same reason, not a button."""
    if video["status"] in ACTIVE_STATUSES:
        return f"Video {video['id']} is {video['status']}: it is running already."
    if video["status"] != FAILED and not video["error_code"]:
        return f"Video {video['id']} is {video['status']}; only a failed video is retried."
    if video["error_code"] in NEVER_RETRYABLE:
        return (f"Retrying cannot help: the source itself was refused ({video['error_code']}). The same file would "
                "fail the same way; upload a corrected file as a new video.")
    return None


def outputs_json(request: Request, video_id: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The published version's outputs: every one with its URL, the downloads (MP4 and WebM renditions, M4A, MP3)
    with sizes for the page, and the URLs players want (``dash_url``: CMAF's MPD; ``storyboard_url``: its WebVTT;
    ``cmaf_master_urls``: each codec's own CMAF master, where the tree has one, and ``video_bytes_by_codec``)."""
    listed = [{"kind": o["kind"], "name": o["name"], "bytes": o["bytes"], "content_type": o["content_type"],
               "duration": o["duration"], "codecs": o["codecs"], "filename": o["filename"],
               "url": _media_url(request, video_id, f"s3://{load_settings().bucket}/{o['key']}")} for o in rows]
    find = {(o["kind"], o["name"]): o["url"] for o in listed}
    downloads = [o for o in listed if o["kind"] in DOWNLOAD_KINDS]  # videos largest first, then M4A, MP3
    downloads.sort(key=lambda o: (DOWNLOAD_KINDS.index(o["kind"]),
                                  -o["bytes"] if o["kind"] != "audio" else o["name"] != "m4a"))
    return {"outputs": listed, "downloads": downloads, "dash_url": find.get(("cmaf", "mpd")),
            "cmaf_master_url": find.get(("cmaf", "master")), "storyboard_url": find.get(("storyboard", "vtt")),
            **subtitle_api_fields(listed),  # subtitles (auto: true for automatic captions), transcript URLs
            **codec_outputs(listed)}


def _video_or_404(catalog: Catalog, video_id: str) -> dict[str, Any]:
    video = catalog.get_video(video_id) if layout.VIDEO_ID_RE.match(video_id) else None
    if video is None:
        raise HTTPException(status_code=404, detail=f"No video {video_id!r}.")
    return video


# JSON API ------------------------------------------------------------------------------------------------------
@app.get("/api/videos", dependencies=[CanRead])
def list_videos(request: Request, status: Annotated[str | None, Query()] = None,
                q: Annotated[str | None, Query(max_length=200)] = None,
                run_id: Annotated[str | None, Query(max_length=250)] = None,
                limit: Annotated[int, Query(ge=1, le=200)] = 50,
                offset: Annotated[int, Query(ge=0)] = 0,
                after: Annotated[str | None, Query(max_length=64)] = None) -> dict[str, Any]:
    """Videos, newest first: filter by ``status``, search ``q`` in title and id, or find the one a run built.
    ``after=<id>``: the page after that video (keyset paging: as fast a million videos deep as on the first page;
    ``offset`` walks the index). ``total``: a search's or a run's matches beyond 10,000 are the database's estimate,
    and ``total_estimated`` is true."""
    if status and status not in VIDEO_STATUSES:
        raise HTTPException(status_code=422, detail=f"status must be one of {', '.join(VIDEO_STATUSES)}")
    catalog = _catalog()
    found, total, estimated = catalog.list_videos_page(status=status, search=q, run_id=run_id, limit=limit,
                                                       offset=offset, after=after)
    line = queue.safe_snapshot(catalog) if any(v["status"] in ACTIVE_STATUSES for v in found) else None
    return {"videos": [video_json(request, v, v["renditions"], line, catalog) for v in found], "total": total,
            "total_estimated": estimated, "limit": limit, "offset": offset}


@app.get("/api/videos/{video_id}", dependencies=[CanRead])
def get_video(request: Request, video_id: str) -> dict[str, Any]:
    """One video: status, the latest version's renditions with progress, media URLs, versions and history."""
    catalog = _catalog()
    video = _video_or_404(catalog, video_id)
    line = queue.safe_snapshot(catalog) if video["status"] in ACTIVE_STATUSES else None
    body = video_json(request, video, catalog.get_renditions(video_id, video["latest_version"]), line, catalog)
    version = video["current_version"]
    body.update(outputs_json(request, video_id, catalog.get_outputs(video_id, version) if version else []))
    body["versions"] = [{k: iso(v) for k, v in row.items() if k != "video_id"}
                        for row in catalog.get_versions(video_id)]
    body["events"] = [{**e, "at": iso(e["at"])} for e in catalog.get_events(video_id)]
    return body


@app.get("/api/videos/{video_id}/events", dependencies=[CanRead])
async def video_events(request: Request, video_id: str) -> StreamingResponse:
    """Server-Sent Events: ``video`` (a snapshot with progress) whenever something changes, ``history`` for each
    catalog event, and ``end`` once the video is no longer being processed."""
    catalog = _catalog()
    await run_in_threadpool(_video_or_404, catalog, video_id)
    try:  # history already shown: ?after=<event id> (a page that loaded it), or Last-Event-ID (a reconnect)
        after = int(request.query_params.get("after") or request.headers.get("Last-Event-ID") or 0)
    except ValueError:
        raise HTTPException(status_code=422, detail="after must be an event id") from None

    async def stream():
        nonlocal after
        last: tuple[Any, ...] | None = None
        video: dict[str, Any] | None = None
        quiet_since = asyncio.get_running_loop().time()
        yield "retry: 2000\n\n"
        while not await request.is_disconnected():
            marker = await run_in_threadpool(catalog.activity_marker, video_id)
            if not marker:
                yield "event: end\ndata: {\"status\": \"deleted\"}\n\n"
                return
            line = await run_in_threadpool(queue.safe_snapshot, catalog)  # its place moves as others go
            if (marker, queue.place(line, video)) != last:
                video = await run_in_threadpool(catalog.get_video, video_id)
                last = (marker, queue.place(line, video))
                rows = await run_in_threadpool(catalog.get_renditions, video_id, video["latest_version"])
                for event in await run_in_threadpool(catalog.get_events, video_id, after):
                    after = event["id"]
                    yield f"id: {after}\nevent: history\ndata: {json.dumps({**event, 'at': iso(event['at'])})}\n\n"
                body = await run_in_threadpool(video_json, request, video, rows, line, catalog)
                yield f"event: video\ndata: {json.dumps(body)}\n\n"
                if video["status"] not in ACTIVE_STATUSES:
                    yield f"event: end\ndata: {json.dumps({'status': video['status']})}\n\n"
                    return
                quiet_since = asyncio.get_running_loop().time()
            elif asyncio.get_running_loop().time() - quiet_since > SSE_HEARTBEAT_SECONDS:
                quiet_since = asyncio.get_running_loop().time()
                yield ": still transcoding\n\n"
            await asyncio.sleep(SSE_POLL_SECONDS)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@app.post("/api/videos/{video_id}/retry", status_code=202, dependencies=[CanTrigger])
def retry_video(request: Request, response: Response, video_id: str, user: GetUserDep,
                overrides: Annotated[dict[str, Any] | None, Body(examples=[{"ladder": ["720p", "360p"]}])] = None
                ) -> dict[str, Any]:
    """Run a failed video again with its original request (ladder, adaptive, chunking, callback, title), same
    source and id; it publishes a new version. An optional JSON body changes request fields for this run and
    the ones after it (``{"ladder": "full"}``; a null removes a field); ``source`` and ``video_id`` are fixed."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.utils.types import DagRunTriggeredByType

    response.headers.update(Limiter().admit_trigger(user))  # a retry starts a run: a trigger (429 when over)
    video = _video_or_404(_catalog(), video_id)
    try:
        changes = check_overrides(overrides or {})
    except RequestError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None  # names the field first
    refusal = retry_refusal(video)
    if refusal:
        raise HTTPException(status_code=409, detail=refusal)
    try:
        parse_source_uri(video["source_uri"])
    except ValueError:
        raise HTTPException(status_code=409, detail="This request was invalid; there is no source to retry.") from None
    conf = rerun_request(video, changes)
    try:  # the stored request passed when it was made; a field the checks no longer accept must be overridden
        check_conf(conf, load_settings())
    except RequestError as exc:
        raise HTTPException(status_code=400, detail=f"{exc.field}: the video's stored request is no longer valid "
                                                    f"({exc}); override {exc.field}") from None
    run_id = f"retry__{video_id}__{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
    trigger_dag(TRANSCODE_VIDEO, triggered_by=DagRunTriggeredByType.REST_API,
                triggering_user_name=user.get_name(), run_id=run_id, conf=conf, run_after=datetime.now(UTC))
    log.info("Retry of %s by %s: run %s%s", video_id, user.get_name(), run_id,
             f" (changed: {', '.join(sorted(changes))})" if changes else "")
    return {"video_id": video_id, "dag_run_id": run_id, "conf": conf}


@app.delete("/api/videos/{video_id}", dependencies=[CanEdit])
def delete_video(video_id: str, user: GetUserDep) -> dict[str, Any]:
    """Remove the published objects and the catalog rows; the source under ``uploads/`` stays.

    Race-free (``vodflow.pipeline.delete``): marked ``deleting`` under the row lock first, so no run can start
    on it while its media goes; a delete interrupted half way is finished by deleting again."""
    _video_or_404(_catalog(), video_id)
    try:
        done = remove_video(_catalog(), _storage(), video_id)
    except AlreadyActive as busy:
        raise HTTPException(status_code=409, detail=f"Video {video_id} is being processed ({busy}); delete it "
                                                    "when it ends.") from None
    if done is None:
        raise HTTPException(status_code=404, detail=f"No video {video_id!r}.")
    log.info("Deleted %s (%d objects) for %s", video_id, done.deleted_objects, user.get_name())
    return {"video_id": video_id, "deleted_objects": done.deleted_objects}


@app.get("/api/stats", dependencies=[CanRead])
def stats() -> dict[str, Any]:
    """Counts by status, completed and failed today (UTC), mean processing time, and what waits for a worker."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    body = _catalog().stats(today)
    body["queue_length"] = waiting_tasks(dag_id=TRANSCODE_VIDEO)  # its tasks waiting for a worker slot
    body["runs_waiting"] = waiting_runs()  # its videos are not in the catalog yet
    body["since"] = iso(today)
    return body


# Pages ---------------------------------------------------------------------------------------------------------
def page_headers(public_base_url: str) -> dict[str, str]:
    """Strict CSP: scripts, styles and API calls from this origin only; media (hls.js fetches segments, so
    connect-src too) also from the configured public media origin — never any http(s) host. Workers from this
    origin or from a blob this page's own scripts made (hls.js's transmuxer; without it, on the main thread)."""
    parts = urlsplit(public_base_url) if public_base_url else None
    media = f" {parts.scheme}://{parts.netloc}" if parts and parts.scheme in ("http", "https") else ""
    return {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": f"default-src 'self'; img-src 'self' data: blob:{media}; "
                                       f"media-src 'self' blob:{media}; connect-src 'self'{media}; "
                                       "style-src 'self' 'unsafe-inline'; script-src 'self'; "
                                       "worker-src 'self' blob:; "  # hls.js transmuxes in a worker made from a blob
                                       "frame-ancestors 'self'"}


@app.get("/ui/videos", dependencies=[CanRead])
def videos_page() -> FileResponse:
    return FileResponse(STATIC / "videos.html", media_type="text/html",
                        headers=page_headers(load_settings().public_base_url))


@app.get("/ui/video", dependencies=[CanRead])
def video_page() -> FileResponse:
    """One video, by ``?id=`` or by ``?run_id=`` (the tab on a transcode_video run)."""
    return FileResponse(STATIC / "video.html", media_type="text/html",
                        headers=page_headers(load_settings().public_base_url))


@app.get("/static/{name}", dependencies=[CanRead])
def static(name: str) -> FileResponse:
    if name not in {"hls.min.js", "dash.mediaplayer.min.js", "vodflow.css", "videos.js", "video.js", "common.js",
                    "player.js", "storyboard.js"}:
        raise HTTPException(status_code=404, detail="Not found.")
    kind = "text/css" if name.endswith(".css") else "text/javascript"
    return FileResponse(STATIC / name, media_type=kind, headers={"Cache-Control": "private, max-age=300"})

