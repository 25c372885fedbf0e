"""The run request (``transcode_video`` conf) as JSON schemas. Pure.

Airflow validates a run's conf against these when it is triggered, so a bad request is refused with a 4xx
by the REST API (and by the trigger form) before any task runs. The pipeline re-checks the same rules.
The catalog keeps each video's request, so a retry or reprocess run asks for what the first run asked for.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from jsonschema import FormatChecker
from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for

from vodflow.errors import Refused
from vodflow.media import escaping
from vodflow.media.encode.codecs import CODECS, H264, parse_codecs
from vodflow.media.encode.ladder import LADDERS, RUNGS
from vodflow.media.encode.loudness import TARGET_RANGE as LOUDNESS_RANGE
from vodflow.media.encode.loudness import TRUE_PEAK_RANGE
from vodflow.media.encode.watermark import MAX_BYTES as WATERMARK_MAX_BYTES
from vodflow.media.encode.watermark import MAX_SIDE as WATERMARK_MAX_SIDE
from vodflow.media.encode.watermark import POSITIONS
from vodflow.priority import PRIORITIES

# s3://bucket/key: a valid bucket name, a key without control characters and without "." or ".." segments.
SOURCE_PATTERN = (
    r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/"
    r"(?!(?:.*/)?\.\.?(?:/|" + escaping.END + r"))(?!.*/" + escaping.END + r")[^\x00-\x1f\x7f]+" + escaping.END
)
VIDEO_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}" + escaping.END
TITLE_PATTERN = r"^[^\x00-\x1f\x7f]*" + escaping.END
# One address, no display name, nothing that could break a header (no CR/LF, commas, angle brackets, quotes).
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_PATTERN = r"^[A-Za-z0-9.!#$%&*+/=?^_`{|}~-]{1,64}@" + _LABEL + r"(?:\." + _LABEL + r")+" + escaping.END
LANGUAGE_PATTERN = escaping.LANGUAGE_PATTERN  # a BCP 47 tag (HLS LANGUAGE, the MPD's lang)
# A caption's name is a playlist's NAME quoted-string (RFC 8216 4.2): no '"', no line break of any kind, no control
# character. Refused at trigger rather than rewritten, so the app sees its mistake (the pipeline escapes anyway).
CAPTION_NAME_PATTERN = r'^[^"\x00-\x1f\x7f\x85\u2028\u2029]+' + escaping.END
# What a run publishes: a streaming tree (TS HLS and/or CMAF HLS+DASH) and, optionally, the extras.
STREAMING_OUTPUTS = ("hls", "cmaf")
OUTPUT_KINDS = (*STREAMING_OUTPUTS, "mp4", "webm", "audio", "storyboard")
MP4_CHOICES = ("top", "all")
# A watermark: a PNG with alpha in an allowed bucket, a corner, sizes as fractions of each rendition's width.
WATERMARK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["image"],
    "properties": {
        "image": {"type": "string", "pattern": SOURCE_PATTERN, "minLength": 8, "maxLength": 1100},
        "position": {"type": "string", "enum": list(POSITIONS)},
        "margin": {"type": "number", "minimum": 0, "maximum": 0.25},
        "size": {"type": "number", "minimum": 0.01, "maximum": 0.5},
        "opacity": {"type": "number", "minimum": 0, "maximum": 1},
        "poster": {"type": "boolean"},
    },
}



def name_or_names(one: list[str], many: list[str]) -> list[dict[str, Any]]:
    """A field that takes null, one name of ``one``, or a list of distinct names of ``many``."""
    return [{"type": "null"}, {"type": "string", "enum": one},
            {"type": "array", "items": {"type": "string", "enum": many}, "minItems": 1, "maxItems": len(many),
             "uniqueItems": True}]

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
        "description": "Optional. A per-title ladder: each rung's bitrate from a quick VMAF probe of this video "
                       "(easy content gets fewer bits at the same quality, content the fixed ladder starves up to "
                       "1.5x more). Default: the adaptive_ladder setting.",
    },
    "chunk_seconds": {
        "type": ["null", "number"],
        "minimum": 0,
        "maximum": 3600,
        "title": "Chunk length",
        "description": "Optional. Encode in chunks of about this many seconds, in parallel (0: never). Default: "
                       "chunk_seconds for sources longer than chunk_threshold_seconds.",
    },
    "captions": {
        "type": ["null", "array"],
        "maxItems": 20,
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["source", "language"],
            "properties": {
                "source": {"type": "string", "pattern": SOURCE_PATTERN, "minLength": 8, "maxLength": 1100},
                "language": {"type": "string", "pattern": LANGUAGE_PATTERN,
                             "maxLength": escaping.MAX_LANGUAGE_CHARS},
                "name": {"type": "string", "maxLength": escaping.MAX_NAME_CHARS, "pattern": CAPTION_NAME_PATTERN},
            },
        },
        "title": "Captions",
        "description": "Optional. Sidecar caption files, SRT or WebVTT, published as WebVTT subtitle renditions: "
                       '[{"source": "s3://bucket/talk.en.srt", "language": "en", "name"?: "English"}]; language a '
                       "BCP 47 tag, name one line without double quotes (at most 64 characters), each file at most "
                       "caption_max_bytes (5 MiB).",
    },
    "outputs": {
        "type": ["null", "array"],
        "items": {"type": "string", "enum": list(OUTPUT_KINDS)},
        "minItems": 1,
        "uniqueItems": True,
        "contains": {"enum": list(STREAMING_OUTPUTS)},
        "title": "Outputs",
        "description": f"Optional. What to publish, at least one of {' or '.join(STREAMING_OUTPUTS)}: "
                       f"{', '.join(OUTPUT_KINDS)}. Default: the outputs setting (hls).",
    },
    "mp4_renditions": {
        "anyOf": name_or_names(list(MP4_CHOICES), sorted(RUNGS)),
        "title": "MP4 downloads",
        "description": "Optional, with outputs mp4 or webm. Which renditions become MP4 (and WebM) downloads: top, "
                       "all, or rung names (those the video's ladder has). Default: the mp4_renditions setting (top).",
    },
    "loudness": {
        "anyOf": [
            {"type": "null"},
            {"type": "boolean", "enum": [False]},
            {"type": "number", "minimum": LOUDNESS_RANGE[0], "maximum": LOUDNESS_RANGE[1]},
        ],
        "title": "Loudness target",
        "description": f"Optional. Normalise the main audio track to this integrated loudness in LUFS "
                       f"({LOUDNESS_RANGE[0]:g} to {LOUDNESS_RANGE[1]:g}; e.g. -16 for streaming, -23 for EBU R128) "
                       "with one gain for the whole track, or false to leave it as it is. Default: the loudness "
                       "setting (off).",
    },
    "loudness_true_peak": {
        "type": ["null", "number"],
        "minimum": TRUE_PEAK_RANGE[0],
        "maximum": TRUE_PEAK_RANGE[1],
        "title": "True-peak ceiling",
        "description": f"Optional, with loudness. The highest true peak (dBTP, {TRUE_PEAK_RANGE[0]:g} to "
                       f"{TRUE_PEAK_RANGE[1]:g}) the normalised track may reach; a limiter holds it there when the "
                       "gain alone would pass it. Default: the loudness_true_peak setting (-1).",
    },
    "auto_captions": {
        "anyOf": [
            {"type": "null"},
            {"type": "boolean"},
            {"type": "object", "additionalProperties": False,
             "properties": {"language": {"type": "string", "pattern": r"^[a-z]{2,3}" + escaping.END}}},
        ],
        "title": "Automatic captions",
        "description": 'Optional. Speech recognised into a WebVTT subtitle track labelled "(auto-generated)" '
                       'and a transcript: true, false, or {"language": "en"} (an ISO 639-1 code; default: the '
                       "model's, or detected by a multilingual model). Default: the auto_captions setting.",
    },
    "codecs": {
        "anyOf": name_or_names(list(CODECS), list(CODECS)),
        "title": "Codecs",
        "description": f"Optional. The video codecs the ladder is delivered in ({', '.join(CODECS)}): a list, or one "
                       "name. H.264 is always included (the fallback every player decodes, and the TS tree); any "
                       "other codec is published in the CMAF tree (fMP4 HLS and DASH), which a run asking for one "
                       "then makes even when outputs do not name cmaf. Default: the codecs setting (h264).",
    },
    "watermark": {
        "anyOf": [{"type": "null"}, WATERMARK_SCHEMA],
        "title": "Watermark",
        "description": 'Optional. An image over every rendition: {"image": "s3://bucket/logo.png", "position"?: '
                       f'{"|".join(POSITIONS)} (bottom-right), "margin"?: 0.03, "size"?: 0.12 (fractions of the '
                       'video\'s width), "opacity"?: 1.0, "poster"?: false}; a PNG with an alpha channel, at most '
                       f"{WATERMARK_MAX_BYTES // 1048576} MiB and {WATERMARK_MAX_SIDE}x{WATERMARK_MAX_SIDE} pixels, "
                       "from a source bucket. A mark the watermark setting imposes stays; this one goes above it.",
    },
    "priority": {
        "type": ["null", "string"],
        "enum": [None, *PRIORITIES],
        "title": "Priority",
        "description": "Optional. high, normal or low: which waiting video takes the next free transcode slot "
                       "(high first; within one priority, the oldest). Default: the priority_by_user setting's "
                       "for the user who triggers, else normal. Kept by retries and reprocess runs.",
    },
    "callback_url": {
        "type": ["null", "string"],
        "pattern": r"^https?://[^\s]+" + escaping.END,
        "maxLength": 2048,
        "title": "Callback URL",
        "description": "Optional. Receives a JSON POST when the video is ready or failed.",
    },
    "notify_email": {
        "anyOf": [
            {"type": "null"},
            {"type": "string", "pattern": EMAIL_PATTERN, "maxLength": 254},
            {"type": "array", "items": {"type": "string", "pattern": EMAIL_PATTERN, "maxLength": 254},
             "minItems": 1, "maxItems": 10, "uniqueItems": True},
        ],
        "title": "Notify by email",
        "description": "Optional. An address (or a list) told by email when the video is ready or failed. "
                       "Default: the notify_email setting.",
    },
}
DEFAULTS: dict[str, Any] = {"video_id": None, "title": None, "ladder": "default", "adaptive": None,
                            "chunk_seconds": None, "captions": None, "watermark": None, "callback_url": None,
                            "notify_email": None, "outputs": None, "mp4_renditions": None, "auto_captions": None,
                            "codecs": None, "loudness": None, "loudness_true_peak": None, "priority": None}

# Characters a regex treats specially; escaped by hand because the pattern is also a JavaScript regex (Airflow's
# trigger form), where Python's re.escape output (e.g. "\\-") is invalid in unicode mode.
_REGEX_SYNTAX = set("\\^$.*+?()[]{}|/")


def _regex_literal(text: str) -> str:
    return "".join(f"\\{c}" if c in _REGEX_SYNTAX else c for c in text)


def source_allowlist_pattern(buckets: tuple[str, ...], prefixes: tuple[str, ...] = ()) -> str:
    """``source``'s schema pattern, limited to the allowlisted buckets (and key prefixes, if any): Airflow's
    Params check then refuses any other source at trigger time (HTTP 400), like any other bad field."""
    allowed_buckets = "|".join(_regex_literal(b) for b in buckets)
    allowed_prefixes = "|".join(_regex_literal(p) for p in prefixes)
    lookahead = f"(?=s3://(?:{allowed_buckets})/{f'(?:{allowed_prefixes})' if prefixes else ''})"
    return "^" + lookahead + SOURCE_PATTERN[1:]


def param_schemas(buckets: tuple[str, ...], prefixes: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """The DAG's Params: SCHEMAS with the source allowlist built in."""
    source = {**SCHEMAS["source"], "pattern": source_allowlist_pattern(buckets, prefixes),
              "description": "The uploaded video: s3://bucket/key, in " + ", ".join(buckets)
              + (f" under {', '.join(prefixes)}" if prefixes else "")}
    return {**SCHEMAS, "source": source}


def check_source_allowed(source: str, buckets: tuple[str, ...], prefixes: tuple[str, ...] = ()) -> None:
    """RequestError unless ``source`` is in an allowlisted bucket (and under an allowlisted prefix, if any).

    Workers can read more buckets than users should name: without this, a run is a way to read them."""
    bucket, _, key = str(source).removeprefix("s3://").partition("/")
    if bucket not in buckets:
        raise RequestError("source", f"source: bucket {bucket!r} is not allowed; sources come from "
                                     f"{', '.join(buckets)}")
    if prefixes and not any(key.startswith(p) for p in prefixes):
        raise RequestError("source", f"source: key {key!r} is not under an allowed prefix ({', '.join(prefixes)})")


def run_codecs(requested: Any, setting: tuple[str, ...]) -> tuple[str, ...]:
    """The codecs a run encodes: the request's (a list or one name), else the setting's; H.264 first and always
    there. RequestError (field ``codecs``) for an unknown name or a wrong type, the setting's too."""
    try:
        return parse_codecs(setting if requested is None else requested)
    except ValueError as exc:
        raise RequestError("codecs", f"codecs: {exc}" + ("" if requested is not None else
                                                         " (the codecs setting)")) from None


def run_outputs(outputs: list[str], codecs: tuple[str, ...]) -> list[str]:
    """A run's outputs with ``cmaf`` added when it asks for any codec but H.264: the other codecs exist only in
    the CMAF tree."""
    return outputs if codecs == (H264,) or "cmaf" in outputs else [*outputs, "cmaf"]


# A re-run (retry, reprocess) is the same video from the same upload: these two are never changed by one.
FIXED_ON_RERUN = ("source", "video_id")


class RequestError(Refused, ValueError):
    """A request field that is unknown or has a bad value; ``field`` names it for the caller."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_same_source(video_id: str | None, source: str, existing_source: str | None) -> None:
    """RequestError when ``video_id`` is an existing video made from another source.

    A video's id is its identity for players, apps and the catalog: a run that named an existing id with another
    source would replace that video's content. The same source is a re-run (retry, reprocess) and stays allowed;
    a new video takes a new id (or none: each upload's id is derived from it). A 400 like any bad field, not a
    409: on Airflow's trigger endpoint a 409 means "this run exists", which a client retrying would believe."""
    if video_id and existing_source is not None and existing_source != source:
        raise RequestError("video_id", f"video_id {video_id!r} is the id of a video made from another source, "
                                          "and a video's source never changes: leave video_id out (each upload "
                                          "gets its own id) or choose a new one")


def check_fields(fields: Mapping[str, Any]) -> None:
    """Each field must be a known request key whose value its schema accepts (what Airflow's Params check)."""
    unknown = unknown_fields(fields)
    if unknown is not None:
        raise unknown
    for name, value in fields.items():
        schema = SCHEMAS[name]
        error = best_match(validator_for(schema)(schema, format_checker=FormatChecker()).iter_errors(value))
        if error is not None:
            raise RequestError(name, f"{name}: {error.message}")


def unknown_fields(fields: Mapping[str, Any]) -> RequestError | None:
    """The first key that is not a request field, as the error that names it (None: every key is known).

    Airflow's Params accept any extra key, so a misspelt ``ladderr`` would otherwise run with the defaults."""
    for name in fields:
        if name not in SCHEMAS:
            return RequestError(name, f"unknown request field {name!r}; known: {', '.join(SCHEMAS)}")
    return None


def check_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Fields a retry may change (ladder, title, …), checked; never ``source`` or ``video_id``."""
    for name in overrides:
        if name in FIXED_ON_RERUN:
            raise RequestError(name, f"{name} cannot be changed on a retry: it is the same video from the same upload")
    check_fields(overrides)
    return dict(overrides)


def kept_request(params: Mapping[str, Any], video_id: str) -> dict[str, Any]:
    """What the catalog keeps of a run's request: its known, non-null fields and the video's id."""
    return {**{k: v for k, v in params.items() if k in SCHEMAS and v is not None}, "video_id": video_id}


def rerun_request(video: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The conf that runs a catalog video again: its stored request (source, title and id for a row from before
    the request was kept), with ``overrides`` applied (a null removes a field) and the video's own id."""
    stored = json.loads(video["request"]) if video.get("request") else {
        "source": video["source_uri"], "title": video.get("title")}
    merged = {**{k: v for k, v in stored.items() if k in SCHEMAS}, **(overrides or {})}
    return {**{k: v for k, v in merged.items() if v is not None}, "video_id": video["id"]}
