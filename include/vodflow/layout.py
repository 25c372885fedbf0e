"""The S3 layout (ARCHITECTURE.md) and source-URI rules. Pure.

    uploads/<anything>                              sources, never modified by the pipeline
    videos/<video_id>/v<version>/hls/master.m3u8    multivariant playlist
    videos/<video_id>/v<version>/hls/<rendition>/   index.m3u8, iframes.m3u8, seg_NNNNN.ts
    videos/<video_id>/v<version>/thumbs/            poster.jpg, NNN.jpg
    videos/<video_id>/v<version>/early/             master.m3u8, <track>/index.m3u8 (EVENT playlists, no-cache)
                                                    while the version is encoded; a chunked run's segments too
    videos/<video_id>/v<version>/mp4/<rendition>.mp4 download renditions (outputs mp4)
    videos/<video_id>/v<version>/webm/<rendition>.webm  AV1 + Opus download renditions (outputs webm)
    videos/<video_id>/v<version>/audio/<title>.m4a  and .mp3, the audio downloads (outputs audio)
    videos/<video_id>/v<version>/storyboard/        sprite_NNN.jpg, storyboard.vtt (outputs storyboard)
    videos/<video_id>/v<version>/cmaf/              master.m3u8, manifest.mpd, <track>/init.mp4 + seg_NNNNN.m4s
                                                    (outputs cmaf; a track per rendition and per AAC bitrate)

A version prefix is immutable once written, so every object can be cached forever; readers find the current
version through the catalog, which switches it in one transaction after everything is uploaded.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import unicodedata
from dataclasses import dataclass

from vodflow.media import escaping

UPLOADS_PREFIX = "uploads/"
VIDEOS_PREFIX = "videos/"
CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".m4a": "audio/mp4",
    ".mp3": "audio/mpeg",
    ".m4s": "video/iso.segment",
    ".mpd": "application/dash+xml",
    ".jpg": "image/jpeg",
    ".vtt": "text/vtt",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}
IMMUTABLE_CACHE_CONTROL = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"  # what changes under its key: the early tree's EVENT playlists
VIDEO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
CONTROL_CHARS_RE = re.compile(r"[\x00-\x1f\x7f]")
MAX_KEY_BYTES = 1024
MP4_DIR, WEBM_DIR, AUDIO_DIR, STORYBOARD_DIR = "mp4/", "webm/", "audio/", "storyboard/"  # under a version prefix


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_source_uri(uri: str) -> S3Location:
    """Validate an ``s3://bucket/key`` source URI; ValueError says what is wrong with it."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise ValueError("source must be an s3://bucket/key URI")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not BUCKET_RE.match(bucket):
        raise ValueError(f"invalid bucket name {bucket!r}")
    if not key or key.endswith("/"):
        raise ValueError("source must name an object, not a bucket or a folder")
    if CONTROL_CHARS_RE.search(key):
        raise ValueError("source key contains control characters")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValueError(f"source key is longer than {MAX_KEY_BYTES} bytes")
    if any(part in ("..", ".") for part in key.split("/")):
        raise ValueError("source key must not contain '.' or '..' path segments")
    return S3Location(bucket, key)


def derive_video_id(bucket: str, key: str, etag: str) -> str:
    """Deterministic id for (bucket, key, etag): the same upload is always the same video."""
    digest = hashlib.sha256(f"{bucket}\0{key}\0{etag.strip(chr(34))}".encode()).hexdigest()
    return f"vid_{digest[:20]}"


def version_prefix(video_id: str, version: int) -> str:
    return f"{VIDEOS_PREFIX}{video_id}/v{version}/"


def video_prefix(video_id: str) -> str:
    return f"{VIDEOS_PREFIX}{video_id}/"


def hls_prefix(video_id: str, version: int) -> str:
    return f"{version_prefix(video_id, version)}hls/"


def early_prefix(video_id: str, version: int) -> str:
    """A building version's early tree: EVENT playlists while it is encoded (``pipeline.early``)."""
    return f"{version_prefix(video_id, version)}early/"


def chunks_prefix(video_id: str, version: int) -> str:
    """Chunked encodes' intermediate files, between the chunk tasks and the join (deleted by the join)."""
    return f"{version_prefix(video_id, version)}chunks/"


def thumbs_prefix(video_id: str, version: int) -> str:
    return f"{version_prefix(video_id, version)}thumbs/"


def slug(title: str, fallback: str = "audio") -> str:
    """A key-safe name from a title (ASCII letters, digits, "-" and "_"), e.g. the audio downloads' keys."""
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:80].strip("-") or fallback


def download_filename(title: str, suffix: str) -> str:
    """A file name a browser can save, from the video's title: no path separators, quotes, control or shell
    characters; spaces kept, runs of anything else folded to one "_"; never empty, at most ~100 characters."""
    stem = re.sub(r"[^\w .()-]+", "_", CONTROL_CHARS_RE.sub("", title), flags=re.UNICODE)
    stem = re.sub(r"\s+", " ", stem).strip(" ._-")[:100].rstrip(" ._-") or "video"
    return f"{stem}{suffix}"


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the UTF-8 name (RFC 6266 / RFC 5987), escaped whatever the
    name holds (``escaping.content_disposition``)."""
    return escaping.content_disposition(filename)


def content_type(key: str) -> str:
    return CONTENT_TYPES.get(posixpath.splitext(key)[1].lower(), "application/octet-stream")


def title_from_key(key: str) -> str:
    stem = posixpath.splitext(posixpath.basename(key))[0]
    return re.sub(r"[_]+", " ", stem).strip()[:200] or "untitled"
