"""Settings: the ``[vodflow]`` section of the Airflow configuration (``AIRFLOW__VODFLOW__<KEY>`` in the
environment), with safe defaults. Connections are Airflow connections; nothing names a host.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache

from vodflow.media.options import EncoderSettings, Limits, QualityPolicy, parse_targets

SECTION = "vodflow"


@dataclass(frozen=True)
class Settings:
    bucket: str = "vodflow"
    aws_conn_id: str = "aws_default"
    catalog_conn_id: str = "vodflow_catalog"
    scratch_dir: str = field(default_factory=lambda: os.path.join(tempfile.gettempdir(), "vodflow"))
    public_base_url: str = ""  # e.g. a CDN in front of the bucket; empty: the plugin serves media itself
    default_ladder: str = "default"
    adaptive_ladder: bool = False  # per-title ladder (VMAF-judged probe), when a run does not say
    chunk_threshold_seconds: float = 120.0  # longer sources are encoded in chunks, in parallel
    chunk_seconds: float = 30.0  # chunk length (rounded to the 6 s segment grid)
    keep_old_versions: int = 1  # previous versions kept after a publish, for players still on them
    watch_prefix: str = "uploads/"  # watch_uploads starts a run for each new object under it
    watch_poll_seconds: float = 5.0
    watch_settle_seconds: float = 10.0  # an app that uploads and triggers itself goes first
    watch_lookback_seconds: float = 7200.0  # >= the upload URL's life: S3 may date an object by its start
    watch_run_seconds: float = 6 * 3600.0  # a quiet watcher run ends (skipped) after this; the next one starts
    # The event-driven watcher (watch_upload_events): the SQS queue URL S3 notifies; empty: no such DAG.
    upload_events_queue: str = ""
    upload_events_conn_id: str = ""  # the AWS connection for SQS; empty: aws_conn_id
    upload_events_prefix: str = ""  # keys it starts runs for; empty: watch_prefix
    upload_url_expiry_seconds: int = 3600
    multipart_threshold_bytes: int = 64 * 1024 * 1024  # larger uploads are multipart (a single PUT stops at 5 GB)
    upload_part_size_bytes: int = 16 * 1024 * 1024  # preferred part size (raised so a file fits 10,000 parts)
    upload_abort_after_hours: float = 24.0  # unfinished multipart uploads older than this are aborted
    reprocess_outdated_per_run: int = 50  # videos on an older ladder re-encoded per scheduled run
    # Runs of transcode_video open at once (the DAG's max_active_runs); the rest wait queued in Airflow. The
    # scheduler re-examines every open run on every loop, so more than the transcode slots can use costs CPU.
    max_active_videos: int = 16
    # Work items of one video encoding at once (transcode's max_active_tis_per_dagrun): a long video's chunks
    # leave slots for the uploads behind it.
    max_items_per_video: int = 16
    # Sources: only these buckets (comma-separated; empty: ``bucket``) and, if set, only under these prefixes.
    source_buckets: tuple[str, ...] = ()
    source_prefixes: tuple[str, ...] = ()
    # Webhooks: the signing secret is the password of the connection ``webhook_conn_id`` (or ``webhook_secret``).
    webhook_conn_id: str = "vodflow_webhook"
    webhook_secret: str = ""
    webhook_allowed_hosts: tuple[str, ...] = ()  # hosts called even on a non-public address (e.g. an internal app)
    # Wall clock, however slowly a receiver answers: one attempt, answered in full, takes at most
    # webhook_timeout_seconds; one delivery (every attempt and backoff) at most this: what it may hold a task.
    webhook_deadline_seconds: float = 60.0
    webhook_attempts: int = 4
    webhook_backoff_seconds: float = 2.0
    webhook_timeout_seconds: float = 10.0
    # Sidecar caption files (conf captions) larger than this are refused (too_large) before they are read:
    # WebVTT or SRT for a 3 h film is under 1 MiB.
    caption_max_bytes: int = 5 * 1024 * 1024
    # Email on ready/failed through Airflow's SMTP connection; the run's notify_email, else these addresses.
    notify_email: tuple[str, ...] = ()
    smtp_conn_id: str = "smtp_default"
    email_from: str = ""  # empty: the connection's from_email
    metrics_token: str = ""  # bearer token Prometheus scrapes /vodflow/metrics with; empty: scrapes refused
    ui_base_url: str = ""  # where people reach Airflow (links in emails), e.g. https://airflow.example.com
    # What a run publishes when its conf does not say (request.OUTPUT_KINDS), and which renditions become MP4
    # downloads ("top", "all" or rung names).
    outputs: tuple[str, ...] = ("hls",)
    mp4_renditions: tuple[str, ...] = ("top",)
    limits: Limits = field(default_factory=Limits)
    encoder: EncoderSettings = field(default_factory=EncoderSettings)
    quality: QualityPolicy = field(default_factory=QualityPolicy)  # what the per-title ladder aims at

    @property
    def events_prefix(self) -> str:
        return self.upload_events_prefix or self.watch_prefix

    @property
    def allowed_source_buckets(self) -> tuple[str, ...]:
        return self.source_buckets or (self.bucket,)


def _csv(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _conf():
    from airflow.sdk.configuration import conf

    return conf


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    conf = _conf()

    def get(key: str, default: str) -> str:
        return conf.get(SECTION, key, fallback=default)

    def getfloat(key: str, default: float) -> float:
        return float(get(key, str(default)))

    defaults, limits, encoder, quality = Settings(), Limits(), EncoderSettings(), QualityPolicy()
    return Settings(
        bucket=get("bucket", defaults.bucket),
        aws_conn_id=get("aws_conn_id", defaults.aws_conn_id),
        catalog_conn_id=get("catalog_conn_id", defaults.catalog_conn_id),
        scratch_dir=get("scratch_dir", defaults.scratch_dir),
        public_base_url=get("public_base_url", defaults.public_base_url).rstrip("/"),
        default_ladder=get("default_ladder", defaults.default_ladder),
        adaptive_ladder=get("adaptive_ladder", str(defaults.adaptive_ladder)).strip().lower() in ("true", "1", "yes"),
        chunk_threshold_seconds=getfloat("chunk_threshold_seconds", defaults.chunk_threshold_seconds),
        chunk_seconds=getfloat("chunk_seconds", defaults.chunk_seconds),
        keep_old_versions=int(getfloat("keep_old_versions", defaults.keep_old_versions)),
        watch_prefix=get("watch_prefix", defaults.watch_prefix),
        watch_poll_seconds=getfloat("watch_poll_seconds", defaults.watch_poll_seconds),
        watch_settle_seconds=getfloat("watch_settle_seconds", defaults.watch_settle_seconds),
        watch_lookback_seconds=getfloat("watch_lookback_seconds", defaults.watch_lookback_seconds),
        watch_run_seconds=getfloat("watch_run_seconds", defaults.watch_run_seconds),
        upload_events_queue=get("upload_events_queue", "").strip(),
        upload_events_conn_id=get("upload_events_conn_id", ""),
        upload_events_prefix=get("upload_events_prefix", ""),
        upload_url_expiry_seconds=int(getfloat("upload_url_expiry_seconds", defaults.upload_url_expiry_seconds)),
        multipart_threshold_bytes=int(getfloat("multipart_threshold_bytes", defaults.multipart_threshold_bytes)),
        upload_part_size_bytes=int(getfloat("upload_part_size_bytes", defaults.upload_part_size_bytes)),
        upload_abort_after_hours=getfloat("upload_abort_after_hours", defaults.upload_abort_after_hours),
        reprocess_outdated_per_run=int(getfloat("reprocess_outdated_per_run", defaults.reprocess_outdated_per_run)),
        max_active_videos=max(1, int(getfloat("max_active_videos", defaults.max_active_videos))),
        max_items_per_video=max(1, int(getfloat("max_items_per_video", defaults.max_items_per_video))),
        source_buckets=_csv(get("source_buckets", "")),
        source_prefixes=_csv(get("source_prefixes", "")),
        webhook_conn_id=get("webhook_conn_id", defaults.webhook_conn_id),
        webhook_secret=get("webhook_secret", ""),
        webhook_allowed_hosts=_csv(get("webhook_allowed_hosts", "")),
        webhook_deadline_seconds=max(1.0, getfloat("webhook_deadline_seconds", defaults.webhook_deadline_seconds)),
        webhook_attempts=max(1, int(getfloat("webhook_attempts", defaults.webhook_attempts))),
        webhook_backoff_seconds=getfloat("webhook_backoff_seconds", defaults.webhook_backoff_seconds),
        webhook_timeout_seconds=getfloat("webhook_timeout_seconds", defaults.webhook_timeout_seconds),
        caption_max_bytes=max(1, int(getfloat("caption_max_bytes", defaults.caption_max_bytes))),
        notify_email=_csv(get("notify_email", "")),
        smtp_conn_id=get("smtp_conn_id", defaults.smtp_conn_id),
        email_from=get("email_from", ""),
        ui_base_url=get("ui_base_url", "").rstrip("/"),
        metrics_token=get("metrics_token", ""),
        outputs=_csv(get("outputs", ",".join(defaults.outputs))) or defaults.outputs,
        mp4_renditions=_csv(get("mp4_renditions", ",".join(defaults.mp4_renditions))) or defaults.mp4_renditions,
        limits=Limits(
            min_duration=getfloat("min_duration_seconds", limits.min_duration),
            max_duration=getfloat("max_duration_seconds", limits.max_duration),
            max_size_bytes=int(getfloat("max_size_bytes", limits.max_size_bytes)),
            min_dimension=int(getfloat("min_dimension", limits.min_dimension)),
            max_dimension=int(getfloat("max_dimension", limits.max_dimension)),
        ),
        encoder=EncoderSettings(
            preset=get("x264_preset", encoder.preset),
            threads=int(getfloat("encoder_threads", encoder.threads)),
            timeout_base=getfloat("encode_timeout_base_seconds", encoder.timeout_base),
            timeout_per_source_second=getfloat("encode_timeout_per_source_second",
                                               encoder.timeout_per_source_second),
        ),
        quality=QualityPolicy(
            targets=parse_targets(get("vmaf_targets", ",".join(f"{t:g}" for t in quality.targets))),
            ceiling=getfloat("vmaf_ceiling", quality.ceiling),
            max_drop=getfloat("vmaf_max_drop", quality.max_drop),
            min_gain=getfloat("vmaf_min_gain", quality.min_gain),
            jnd=getfloat("vmaf_jnd", quality.jnd),
        ),
    )
