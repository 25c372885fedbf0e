"""The event-driven watcher: S3 event notifications → SQS → an ``AssetWatcher`` → ``watch_upload_events``.

An alternative to polling (``watch_uploads``) where S3 can notify SQS (AWS; MinIO cannot): the triggerer
long-polls the queue (``SqsSensorTrigger`` through common-messaging's ``MessageQueueTrigger``), each batch of
messages becomes an asset event, and the DAG scheduled on that asset claims what the messages name.

Nothing here trusts a message to be unique or well formed: SQS delivers at least once, S3 sends an
``s3:TestEvent`` when notifications are configured, and anyone allowed to send to the queue can send anything.
Every object a record names is looked up (HEAD) and claimed exactly as the poller claims what it lists — the
catalog's (bucket, key, etag) primary key — so a duplicate delivery, an object the poller or an app already
started, or both watchers running at once never start a second run. What cannot be used is logged and skipped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from vodflow.catalog import UploadObject, catalog_for_connection
from vodflow.errors import BadInput
from vodflow.layout import S3Location
from vodflow.settings import Settings, load_settings
from vodflow.storage import Storage
from vodflow.triggers.watch import is_watchable, runs_for_claims, upload_run_id, video_id_for

log = logging.getLogger(__name__)
ASSET_NAME = "vodflow_upload_events"
LONG_POLL_SECONDS = 20  # SQS's maximum: a receive returns as soon as a message arrives, else after 20 s


@dataclass(frozen=True)
class NotifiedObject:
    """An object an ObjectCreated record names (the key decoded: S3 sends it URL-encoded, spaces as ``+``)."""

    bucket: str
    key: str
    etag: str
    event: str


def _s3_records(body: Any) -> list[Any] | None:
    """The S3 records of a message body, also inside an SNS envelope (S3 → SNS → SQS); None: not S3's."""
    if isinstance(body, dict) and body.get("Type") == "Notification" and isinstance(body.get("Message"), str):
        try:
            body = json.loads(body["Message"])
        except ValueError:
            return None
    if isinstance(body, dict) and isinstance(body.get("Records"), list):
        return body["Records"]
    return None


def objects_in_body(raw: str, message_id: str = "?") -> list[NotifiedObject]:
    """The created objects one SQS message body names; anything else in it is logged and skipped."""
    try:
        body = json.loads(raw)
    except (TypeError, ValueError):
        log.warning("Message %s skipped: its body is not JSON", message_id)
        return []
    if isinstance(body, dict) and body.get("Event") == "s3:TestEvent":
        log.info("Message %s is S3's test event for bucket %s: nothing to do", message_id, body.get("Bucket"))
        return []
    records = _s3_records(body)
    if records is None:
        log.warning("Message %s skipped: not an S3 event notification", message_id)
        return []
    found = []
    for record in records:
        try:
            event, s3 = str(record["eventName"]), record["s3"]
            obj = NotifiedObject(str(s3["bucket"]["name"]), unquote_plus(str(s3["object"]["key"])),
                                 str(s3["object"].get("eTag", "")).strip('"'), event)
        except (KeyError, TypeError):
            log.warning("Message %s: a record without eventName/s3.bucket.name/s3.object.key skipped", message_id)
            continue
        if not event.startswith("ObjectCreated:"):
            log.info("Message %s: %s for s3://%s/%s skipped (not a new object)", message_id, event, obj.bucket,
                     obj.key)
            continue
        found.append(obj)
    return found


def messages_of(asset_events: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """The SQS messages of the asset events that triggered a run (``extra.payload.message_batch`` each)."""
    for event in asset_events:
        extra = getattr(event, "extra", None) or {}
        payload = extra.get("payload") if isinstance(extra, dict) else None
        batch = payload.get("message_batch") if isinstance(payload, dict) else None
        if not isinstance(batch, list):
            log.warning("Asset event %s skipped: no SQS message batch in it", getattr(event, "id", "?"))
            continue
        yield from (m for m in batch if isinstance(m, dict))


def notified_objects(asset_events: Iterable[Any], bucket: str, prefix: str) -> list[NotifiedObject]:
    """Distinct created objects under ``prefix`` in ``bucket`` that the triggering messages name, in order."""
    found: dict[tuple[str, str, str], NotifiedObject] = {}
    for message in messages_of(asset_events):
        for obj in objects_in_body(message.get("Body"), str(message.get("MessageId", "?"))):
            if obj.bucket != bucket or not is_watchable(obj.key, prefix):
                log.info("s3://%s/%s skipped: not under s3://%s/%s", obj.bucket, obj.key, bucket, prefix)
                continue
            found.setdefault((obj.bucket, obj.key, obj.etag), obj)
    return list(found.values())


def claim_notified_uploads(objects: Iterable[NotifiedObject], settings: Settings | None = None
                           ) -> list[dict[str, Any]]:
    """Claim each notified object that is still there (HEAD: what it is now) and return the runs to start."""
    settings = settings or load_settings()
    storage = Storage(settings.aws_conn_id, settings.bucket)
    found = []
    for obj in objects:
        try:
            info = storage.head(S3Location(obj.bucket, obj.key))
        except BadInput:
            log.info("s3://%s/%s skipped: no longer there", obj.bucket, obj.key)
            continue
        if obj.etag and info.etag != obj.etag:
            log.info("s3://%s/%s was replaced since the notification (etag %s, now %s): claiming what is there",
                     obj.bucket, obj.key, obj.etag, info.etag)
        found.append(UploadObject(obj.bucket, obj.key, info.etag, info.size, info.last_modified or datetime.now(UTC)))
    claims = catalog_for_connection(settings.catalog_conn_id).claim_uploads(settings.bucket, found, video_id_for,
                                                                            upload_run_id)
    runs = runs_for_claims(claims)
    log.info("%d notified object(s); starting %d run(s)", len(found), len(runs))
    return runs


def upload_events_trigger(settings: Settings) -> Any:
    """The SQS watcher: long polls (the message arrives → an asset event at once), deletes what it received."""
    from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

    return MessageQueueTrigger(scheme="sqs", sqs_queue=settings.upload_events_queue,
                               aws_conn_id=settings.upload_events_conn_id or settings.aws_conn_id,
                               max_messages=10, wait_time_seconds=LONG_POLL_SECONDS, waiter_delay=0)
