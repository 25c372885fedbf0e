"""What every step works on (the job) and through (settings, catalog, storage)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vodflow import layout
from vodflow.catalog import Catalog, catalog_for_connection
from vodflow.codec import Coded
from vodflow.layout import S3Location, parse_source_uri
from vodflow.media.encode.watermark import Watermark
from vodflow.media.source.info import SourceInfo
from vodflow.settings import Settings, load_settings
from vodflow.storage import Storage

PRESIGN_SECONDS = 3600
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4's limit


@dataclass(frozen=True)
class Job(Coded):
    """Who and what a run is about: made by ``register``, handed to every later step."""

    video_id: str
    version: int
    run_id: str
    source_uri: str  # s3://bucket/key as requested (the catalog's record of it)
    etag: str
    size: int
    title: str
    ladder: str | list[str]
    callback_url: str | None = None
    adaptive: bool = False
    chunk_seconds: float | None = None  # None: the settings decide; 0: never chunk
    notify_email: str | list[str] | None = None
    captions: list[dict[str, str]] | None = None  # sidecar caption files: source, language, name?
    outputs: list[str] = field(default_factory=lambda: ["hls"])  # request.OUTPUT_KINDS, resolved at register
    mp4_renditions: str | list[str] = "top"  # which renditions become MP4 downloads: top, all or names
    loudness: float | None = None  # the main track's target in LUFS; None: left as it is
    loudness_true_peak: float = -1.0  # dBTP ceiling of the normalised track
    auto_captions: bool | dict[str, str] | None = None  # conf auto_captions; None: the setting decides
    codecs: tuple[str, ...] = ("h264",)  # media.encode.codecs, H.264 first; resolved at register
    # Checked marks, copied into the bucket at prepare (``pipeline.watermarks``): the imposed one first.
    watermarks: tuple[Watermark, ...] = ()

    @property
    def location(self) -> S3Location:
        """Where the uploaded source is."""
        return parse_source_uri(self.source_uri)


@dataclass
class Services:
    """The connections a step works through, built once per task from settings."""

    settings: Settings
    catalog: Catalog
    storage: Storage

    @classmethod
    def load(cls) -> Services:
        settings = load_settings()
        return cls(settings, catalog_for_connection(settings.catalog_conn_id),
                   Storage(settings.aws_conn_id, settings.bucket))

    def scratch(self, job: Job) -> Path:
        """This video version's scratch folder on this worker."""
        return Path(self.settings.scratch_dir, job.video_id, f"v{job.version}")

    def source_url(self, job: Job, probed: SourceInfo | None = None) -> str:
        """A presigned URL of the source, signed by each task when it starts; for an encoder, valid for as long as
        its encode may take (the encode's timeout for the whole source) and an hour, so it cannot expire under a
        long encode; a read that fails anyway is confirmed from a downloaded copy (``transcode.confirmed``)."""
        seconds = PRESIGN_SECONDS
        if probed is not None:
            seconds += int(self.settings.encoder.timeout_for(probed.duration))
        return self.storage.presigned_get(job.location, min(seconds, MAX_PRESIGN_SECONDS))

    def s3_uri(self, key: str) -> str:
        return f"s3://{self.settings.bucket}/{key}"

    def park(self, job: Job, files: dict[Any, str]) -> dict[str, str]:
        """Upload a chunked run's pieces to the version's ``chunks/`` prefix, for the join; name → key."""
        prefix = layout.chunks_prefix(job.video_id, job.version)
        keys = {}
        for name, path in files.items():
            keys[str(name)] = f"{prefix}{os.path.basename(path)}"
            self.storage.upload_file(path, keys[str(name)])
        return keys
