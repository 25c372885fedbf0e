"""Start one transcode per new object under the watched prefix, exactly once per (bucket, key, etag).

Why a deferrable sensor that polls S3, not S3 event notifications: it works with any S3 endpoint (MinIO
cannot feed SQS, and AWS needs extra infrastructure for it), and Airflow 3 has no S3-native event trigger for
assets. While nothing arrives, the only cost is one LIST per poll in the triggerer: no worker slot is held.

Exactly once does not rest on the sensor: the catalog's ``uploads`` table has (bucket, key, etag) as its
primary key and the insert that wins it is the claim; the run id is derived from the video id, so starting a
claimed run twice is a no-op. Overlapping watcher runs, a restarted scheduler or triggerer, or the same
object listed twice therefore never start a second run; new content under the same key has a new etag and
is a new video.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.triggers.base import BaseTrigger, TriggerEvent

from vodflow import layout
from vodflow.catalog import Catalog, UploadObject, catalog_for_connection
from vodflow.settings import Settings, load_settings
from vodflow.storage import Storage

log = logging.getLogger(__name__)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_RUNS_PER_BATCH = 100


@dataclass(frozen=True)
class Watermark:
    """What the watcher has already handled: objects modified since ``since`` are checked one by one."""

    since: datetime
    seen: frozenset[tuple[str, str]]


def upload_run_id(video_id: str) -> str:
    return f"upload__{video_id}"


def video_id_for(obj: UploadObject) -> str:
    return layout.derive_video_id(obj.bucket, obj.key, obj.etag)


def is_watchable(key: str, prefix: str) -> bool:
    """An object worth a transcode: under the prefix, not a folder marker, a key the pipeline accepts."""
    if not key.startswith(prefix) or key.endswith("/"):
        return False
    try:
        layout.parse_source_uri(f"s3://bucket/{key}")
    except ValueError:
        return False
    return True


def new_objects(listing: Iterable[dict[str, Any]], bucket: str, prefix: str, mark: Watermark,
                settled_before: datetime) -> list[UploadObject]:
    """Objects in an S3 listing that the watcher has not handled and that are old enough to act on."""
    found = []
    for item in listing:
        modified = item["LastModified"]
        etag = str(item.get("ETag", "")).strip('"')
        if (modified >= mark.since and modified <= settled_before and is_watchable(item["Key"], prefix)
                and (item["Key"], etag) not in mark.seen):
            found.append(UploadObject(bucket, item["Key"], etag, int(item.get("Size", 0)), modified))
    return found


def watermark(catalog: Catalog, settings: Settings) -> Watermark:
    """Everything claimed so far, as a time plus the handled objects near it.

    S3 may stamp an object with the time its upload began, so an object can appear with a Last-Modified a
    little older than the newest one already claimed: the lookback covers that (at least a presigned URL's life).
    """
    latest = catalog.latest_upload(settings.bucket)
    since = latest - timedelta(seconds=settings.watch_lookback_seconds) if latest else EPOCH
    return Watermark(since, frozenset(catalog.seen_uploads(settings.bucket, since)))


def settled_before(settings: Settings) -> datetime:
    """Leave a just-landed object alone briefly, so an app that uploads and triggers the run itself goes first
    (the watcher then records the object as known instead of starting a second run)."""
    return datetime.now(UTC) - timedelta(seconds=settings.watch_settle_seconds)


class NewUploadsTrigger(BaseTrigger):
    """Polls the watched prefix from the triggerer; fires once an unhandled object has settled."""

    def __init__(self, aws_conn_id: str, bucket: str, prefix: str, since: str, seen: list[list[str]],
                 settle_seconds: float, poll_interval: float) -> None:
        super().__init__()
        self.aws_conn_id, self.bucket, self.prefix = aws_conn_id, bucket, prefix
        self.since, self.seen = since, seen
        self.settle_seconds, self.poll_interval = settle_seconds, poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return ("vodflow.triggers.watch.NewUploadsTrigger", {
            "aws_conn_id": self.aws_conn_id, "bucket": self.bucket, "prefix": self.prefix, "since": self.since,
            "seen": self.seen, "settle_seconds": self.settle_seconds, "poll_interval": self.poll_interval})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        hook = S3Hook(aws_conn_id=self.aws_conn_id)
        mark = Watermark(datetime.fromisoformat(self.since), frozenset((k, e) for k, e in self.seen))
        async with await hook.get_async_conn() as client:
            while True:
                listing = []
                async for page in client.get_paginator("list_objects_v2").paginate(
                        Bucket=self.bucket, Prefix=self.prefix):
                    listing.extend(page.get("Contents", []))
                cutoff = datetime.now(UTC) - timedelta(seconds=self.settle_seconds)
                found = new_objects(listing, self.bucket, self.prefix, mark, cutoff)
                if found:
                    yield TriggerEvent({"status": "found", "count": len(found), "keys": [o.key for o in found[:20]]})
                    return
                await asyncio.sleep(self.poll_interval)


class WaitForUploadsSensor(BaseSensorOperator):
    """Succeeds when there is something to start: new objects under the prefix, or claims not yet started.

    Deferrable: while nothing arrives it waits in the triggerer, not in a worker slot.
    """

    def execute(self, context: Any) -> Any:
        settings = load_settings()
        catalog = catalog_for_connection(settings.catalog_conn_id)
        storage = Storage(settings.aws_conn_id, settings.bucket)
        mark = watermark(catalog, settings)
        if catalog.pending_claims(settings.bucket):
            return {"status": "pending claims"}
        found = new_objects(storage.list_objects(settings.watch_prefix), settings.bucket, settings.watch_prefix,
                            mark, settled_before(settings))
        if found:
            return {"status": "found", "count": len(found)}
        log.info("Waiting for new objects under s3://%s/%s (checking every %g s)", settings.bucket,
                 settings.watch_prefix, settings.watch_poll_seconds)
        self.defer(
            trigger=NewUploadsTrigger(settings.aws_conn_id, settings.bucket, settings.watch_prefix,
                                      mark.since.isoformat(), sorted([k, e] for k, e in mark.seen),
                                      settings.watch_settle_seconds, settings.watch_poll_seconds),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout) if self.timeout else None,
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        log.info("New uploads: %s", event)
        return event


def claim_new_uploads(settings: Settings | None = None) -> list[dict[str, Any]]:
    """Claim every unhandled object and return the ``transcode_video`` runs to start (run id + conf)."""
    settings = settings or load_settings()
    catalog = catalog_for_connection(settings.catalog_conn_id)
    storage = Storage(settings.aws_conn_id, settings.bucket)
    found = new_objects(storage.list_objects(settings.watch_prefix), settings.bucket, settings.watch_prefix,
                        watermark(catalog, settings), settled_before(settings))
    claims = catalog.claim_uploads(settings.bucket, found, video_id_for, upload_run_id)
    for obj in found:
        log.info("Found s3://%s/%s (etag %s, %d bytes)", obj.bucket, obj.key, obj.etag, obj.size)
    runs = [{"trigger_run_id": claim["dag_run_id"],
             "conf": {"source": f"s3://{claim['bucket']}/{claim['key']}", "video_id": claim["video_id"]}}
            for claim in claims[:MAX_RUNS_PER_BATCH]]
    log.info("%d new object(s); starting %d run(s)", len(found), len(runs))
    return runs


def mark_started(run_ids: Iterable[str], settings: Settings | None = None) -> None:
    settings = settings or load_settings()
    catalog_for_connection(settings.catalog_conn_id).mark_uploads_triggered(run_ids)
