"""
### watch_upload_events — one `transcode_video` run per S3 notification of a new upload, exactly once

The event-driven alternative to `watch_uploads`: S3 event notifications (`s3:ObjectCreated:*` on the uploads
prefix) go to an SQS queue; an `AssetWatcher` (common-messaging's `MessageQueueTrigger`, SQS scheme) long-polls it
from the triggerer and turns each batch of messages into an event of the asset `vodflow_upload_events`, which
schedules this DAG. `claim` reads the S3 records of the triggering events and claims each object exactly as the
poller does (catalog primary key (bucket, key, etag), run id `upload__<video_id>`), so a duplicate delivery or an
object the poller or an app already started starts nothing; test events, other keys and malformed messages are
logged and skipped. → `start_transcode` (one mapped trigger per claim) → `mark_started`.

Defined only when `[vodflow] upload_events_queue` is set (the queue URL); `upload_events_conn_id` (default
`aws_conn_id`) is the AWS connection for SQS, `upload_events_prefix` (default `watch_prefix`) the keys it acts on.
The logic lives in `include/vodflow/triggers/events.py`; the start → mark tail, shared with `watch_uploads`,
in `triggers/start_runs.py`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Asset, AssetWatcher, dag, task

from vodflow.settings import load_settings
from vodflow.triggers import events
from vodflow.triggers.start_runs import start_runs

settings = load_settings()

if settings.upload_events_queue:
    upload_events = Asset(events.ASSET_NAME, watchers=[
        AssetWatcher(name="upload_events_sqs", trigger=events.upload_events_trigger(settings))])

    @dag(
        dag_id="watch_upload_events",
        schedule=[upload_events],
        start_date=datetime(2026, 1, 1),
        catchup=False,
        default_args={"retries": 2, "retry_delay": timedelta(seconds=10)},
        tags=["vodflow"],
        doc_md=__doc__,
    )
    def watch_upload_events() -> None:
        @task
        def claim(triggering_asset_events: Any = None) -> list[dict[str, Any]]:
            current = load_settings()
            found = events.notified_objects(triggering_asset_events[upload_events], current.bucket,
                                            current.events_prefix)
            return events.claim_notified_uploads(found, current)

        # A run that already existed (the poller or a duplicate got there first) is a skipped trigger: fine.
        start_runs(claim(), mark_trigger_rule="none_failed")

    watch_upload_events()
