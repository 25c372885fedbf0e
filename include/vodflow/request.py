"""The run request (``transcode_video`` conf) as JSON schemas. Pure.

Airflow validates a run's conf against these when it is triggered, so a bad request is refused with a 4xx
by the REST API (and by the trigger form) before any task runs. The pipeline re-checks the same rules.
"""

from __future__ import annotations

from typing import Any

from vodflow.ladder import LADDERS, RUNGS

# s3://bucket/key: a valid bucket name, a key without control characters and without "." or ".." segments.
SOURCE_PATTERN = (
    r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/"
    r"(?!(?:.*/)?\.\.?(?:/|$))(?!.*/$)[^\x00-\x1f\x7f]+$"
)
VIDEO_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
TITLE_PATTERN = r"^[^\x00-\x1f\x7f]*$"

SCHEMAS: dict[str, dict[str, Any]] = {
    "source": {
        "type": "string",
        "pattern": SOURCE_PATTERN,
        "minLength": 8,
        "maxLength": 1100,
        "title": "Source",
        "description": "The uploaded video: s3://bucket/key",
    },
    "video_id": {
        "type": ["null", "string"],
        "pattern": VIDEO_ID_PATTERN,
        "title": "Video id",
        "description": "Optional. Default: derived from (bucket, key, ETag), so the same upload is the same video.",
    },
    "title": {
        "type": ["null", "string"],
        "maxLength": 200,
        "pattern": TITLE_PATTERN,
        "title": "Title",
        "description": "Optional. Default: the file name.",
    },
    "ladder": {
        "anyOf": [
            {"type": "string", "enum": sorted(LADDERS)},
            {"type": "array", "items": {"type": "string", "enum": sorted(RUNGS)}, "minItems": 1,
             "maxItems": len(RUNGS), "uniqueItems": True},
        ],
        "title": "Ladder",
        "description": f"A ladder name ({', '.join(sorted(LADDERS))}) or a list of rungs ({', '.join(RUNGS)}).",
    },
    "adaptive": {
        "type": ["null", "boolean"],
        "title": "Per-title ladder",
        "description": "Optional. Set each rung's bitrate from a quick complexity probe of this video (easy "
                       "content gets fewer bits, never more than the fixed ladder). Default: the adaptive_ladder "
                       "setting.",
    },
    "chunk_seconds": {
        "type": ["null", "number"],
        "minimum": 0,
        "maximum": 3600,
        "title": "Chunk length",
        "description": "Optional. Encode in chunks of about this many seconds, in parallel (0: never). Default: "
                       "chunk_seconds for sources longer than chunk_threshold_seconds.",
    },
    "callback_url": {
        "type": ["null", "string"],
        "pattern": r"^https?://[^\s]+$",
        "maxLength": 2048,
        "title": "Callback URL",
        "description": "Optional. Receives a JSON POST when the video is ready or failed.",
    },
}
DEFAULTS: dict[str, Any] = {"video_id": None, "title": None, "ladder": "default", "adaptive": None,
                            "chunk_seconds": None, "callback_url": None}
