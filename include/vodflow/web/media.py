"""Media for players when no public base URL is configured: the route that streams a version's objects from S3,
and where a player finds an object (``media_url``). The early tree's EVENT playlists (``early/``) change under
their keys while a version is encoded: they are served ``no-cache``, everything else may be cached."""

from __future__ import annotations

import re
from datetime import UTC
from email.utils import format_datetime

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response, StreamingResponse

from vodflow import layout
from vodflow.layout import content_type, parse_source_uri
from vodflow.ranges import ByteRange, RangeNotSatisfiable
from vodflow.settings import load_settings
from vodflow.storage import ObjectMissing, Storage

# A version's published tree (ARCHITECTURE's S3 layout): v<N>/<folder>/…/<name>.<ext>, folders and names of word
# characters and "-" only (no ".", so no "..": nothing climbs out), at most MEDIA_DEPTH levels (hls/subs/en/x.vtt).
MEDIA_VERSION = re.compile(r"v[0-9]{1,6}")  # each matched whole (fullmatch: "$" would let a final newline in)
# Never chunks/ (a run's intermediates); early/: a building version's EVENT playlists (and a chunked run's segments).
MEDIA_FOLDERS = ("hls", "thumbs", "mp4", "webm", "audio", "storyboard", "cmaf", "early")
MEDIA_DIR = re.compile(r"[\w-]{1,100}")
MEDIA_FILE = re.compile(r"[\w-]{1,120}\.(m3u8|ts|jpg|mp4|webm|m4a|mp3|vtt|m4s|mpd)")
MEDIA_DEPTH = 6
CACHED = "private, max-age=3600"

router = APIRouter()


def media_url(request: Request, video_id: str, uri: str | None) -> str | None:
    """Where a player fetches a published object: the public base URL (CDN, bucket) or this API."""
    if not uri:
        return None
    key = parse_source_uri(uri).key
    base = load_settings().public_base_url
    if base:
        return f"{base}/{key}"
    relative = key[len(layout.video_prefix(video_id)):]
    return f"{request.scope.get('root_path', '')}/api/videos/{video_id}/media/{relative}"


def published_path(path: str) -> bool:
    """``path`` (under a video's prefix) names an object of a version's published tree."""
    parts = path.split("/")
    return (3 <= len(parts) <= MEDIA_DEPTH and bool(MEDIA_VERSION.fullmatch(parts[0])) and parts[1] in MEDIA_FOLDERS
            and all(MEDIA_DIR.fullmatch(part) for part in parts[2:-1]) and bool(MEDIA_FILE.fullmatch(parts[-1])))


def cache_control(path: str) -> str:
    """An early playlist grows under its key: a player must ask again each time (``no-cache``)."""
    parts = path.split("/")
    return layout.NO_CACHE if parts[1] == "early" and parts[-1].endswith(".m3u8") else CACHED


def _storage() -> Storage:
    settings = load_settings()
    return Storage(settings.aws_conn_id, settings.bucket)


@router.api_route("/api/videos/{video_id}/media/{path:path}", methods=["GET", "HEAD"])
def media(request: Request, video_id: str, path: str) -> Response:
    """A published object (playlist, segment, picture, download), for players when no public base URL is
    configured: streamed from S3 a chunk at a time (``READ_CHUNK_BYTES``), a single ``Range`` answered with 206
    (``<video>`` and players seek with it), ``HEAD`` with the headers only."""
    if not layout.VIDEO_ID_RE.match(video_id) or not published_path(path):
        raise HTTPException(status_code=404, detail="No such media.")
    key = layout.video_prefix(video_id) + path
    headers = {"Cache-Control": cache_control(path), "Accept-Ranges": "bytes", "X-Content-Type-Options": "nosniff"}
    storage = _storage()
    try:
        try:
            wanted = ByteRange.parse(request.headers.get("range"))
        except ValueError:  # "bytes=-0": no byte at all
            raise RangeNotSatisfiable(storage.head_key(key).size) from None
        found = storage.open_object(key, wanted, body=request.method == "GET")
    except ObjectMissing:
        raise HTTPException(status_code=404, detail="No such media.") from None
    except RangeNotSatisfiable as exc:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{exc.size}"})
    headers["Content-Length"] = str(found.length)
    if found.partial:
        headers["Content-Range"] = f"bytes {found.start}-{found.start + found.length - 1}/{found.size}"
    if found.etag:
        headers["ETag"] = found.etag
    if found.last_modified:
        headers["Last-Modified"] = format_datetime(found.last_modified.astimezone(UTC), usegmt=True)
    if found.disposition:  # a download keeps the name it was stored with
        headers["Content-Disposition"] = found.disposition
    status = 206 if found.partial else 200
    if request.method == "HEAD":
        return Response(status_code=status, media_type=content_type(key), headers=headers)
    return StreamingResponse(found.chunks(), status_code=status, media_type=content_type(key), headers=headers)
