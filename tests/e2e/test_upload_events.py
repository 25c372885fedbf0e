"""The event-driven watcher through the real stack: moto's S3 notifies its SQS queue (moto's server delivers
S3 → SQS notifications itself, test event included), the triggerer's AssetWatcher long-polls the queue, and
`watch_upload_events` starts one `transcode_video` run per new object — none for a duplicate delivery, a batch
record outside the prefix, a malformed message, or an object an app had already started itself. The poller
watches another prefix in this stack, so every `upload__` run here was started by the SQS path."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import quote_plus

import pytest
import requests

from tests.e2e.conftest import EVENTS_PREFIX, EVENTS_QUEUE
from tests.e2e.test_triggers import runs, wait_until

pytestmark = pytest.mark.e2e
DAG = "transcode_video"
EVENTS_DAG = "watch_upload_events"


def s3_record(bucket: str, key: str, etag: str, size: int, event: str = "ObjectCreated:Put") -> dict[str, Any]:
    """One record as S3 sends it (AWS's notification-content-structure: the key URL-encoded)."""
    return {"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", "eventName": event,
            "eventTime": "2026-12-02T06:00:00.000Z",
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "vodflow-uploads",
                   "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                   "object": {"key": quote_plus(key), "size": size, "eTag": etag}}}


def queue_is_drained(sqs, url: str) -> bool:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                    "ApproximateNumberOfMessagesNotVisible"])
    return all(value == "0" for value in attrs["Attributes"].values())


def events_runs_settled(stack) -> list[dict[str, Any]] | None:
    found = runs(stack, EVENTS_DAG)
    return found if found and all(r["state"] in ("success", "failed") for r in found) else None


def test_each_notification_starts_one_run(embedded_stack, media):
    from airflow.providers.amazon.aws.hooks.sqs import SqsHook

    stack, s3 = embedded_stack, embedded_stack.storage.client
    sqs = SqsHook(aws_conn_id="aws_default").get_conn()
    queue_url = sqs.get_queue_url(QueueName=EVENTS_QUEUE)["QueueUrl"]
    stack.client.wait_for_dag(EVENTS_DAG)
    folder = f"{EVENTS_PREFIX}{uuid.uuid4().hex[:8]}/"
    keys = {name: f"{folder}{name}.mp4" for name in ("app", "one", "two")}
    clip = media["small"]

    # An app uploads and starts its run itself (through the checked trigger, which writes the claim).
    s3.upload_file(str(clip), "vodflow", keys["app"])
    answer = requests.post(f"{stack.airflow.base_url}/vodflow/api/videos", json={"source": f"s3://vodflow/{keys['app']}"},
                           headers={"Authorization": f"Bearer {stack.client.token()}"}, timeout=60)
    assert answer.status_code == 202, answer.text
    app_run = answer.json()["dag_run_id"]

    def ours(prefix: str) -> list[dict[str, Any]]:
        return [r for r in runs(stack, DAG, prefix) if r["conf"]["source"].startswith(f"s3://vodflow/{folder}")]

    # Notifications on: S3 sends its test event at once; then two new uploads and the app's object again.
    s3.put_bucket_notification_configuration(Bucket="vodflow", NotificationConfiguration={"QueueConfigurations": [{
        "Id": "vodflow-uploads", "QueueArn": sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"],
        "Events": ["s3:ObjectCreated:*"], "Filter": {"Key": {"FilterRules": [{"Name": "prefix",
                                                                              "Value": EVENTS_PREFIX}]}}}]})
    try:
        started = time.monotonic()
        for name in ("one", "two", "app"):  # the app's: the same bytes, the same ETag, a real notification
            s3.upload_file(str(clip), "vodflow", keys[name])
        first = wait_until(lambda: len(ours("upload__")) >= 2 and ours("upload__"), 120, "the notified runs")
        print(f"\n2 transcode runs started {time.monotonic() - started:.1f} s after the uploads")
        one = s3.head_object(Bucket="vodflow", Key=keys["one"])
        duplicate = {"Records": [s3_record("vodflow", keys["one"], one["ETag"].strip('"'), one["ContentLength"])]}
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(duplicate))  # again, after its run started
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"Records": [  # a batch, partly elsewhere
            s3_record("vodflow", keys["one"], one["ETag"].strip('"'), 1),
            s3_record("vodflow", "uploads/elsewhere/x.mp4", "e", 1), s3_record("vodflow", keys["two"], "e", 1,
                                                                                "ObjectRemoved:Delete")]}))
        sqs.send_message(QueueUrl=queue_url, MessageBody="this is not an S3 event {")

        done = wait_until(lambda: all(r["state"] in ("success", "failed") for r in ours("upload__"))
                          and ours("upload__"), 180, "the notified runs to finish")
        print(f"both finished {time.monotonic() - started:.1f} s after the uploads")
        wait_until(lambda: queue_is_drained(sqs, queue_url), 60, "every message received")
        time.sleep(3)  # the last batch's asset event has its watch_upload_events run by now
        wait_until(lambda: events_runs_settled(stack), 60, "every message handled")
    finally:
        s3.put_bucket_notification_configuration(Bucket="vodflow", NotificationConfiguration={})

    assert sorted(r["conf"]["source"] for r in first) == [f"s3://vodflow/{keys['one']}", f"s3://vodflow/{keys['two']}"]
    after = ours("upload__")
    assert [r["dag_run_id"] for r in after] == [r["dag_run_id"] for r in done]  # duplicates started nothing
    assert {r["state"] for r in after} == {"success"}
    for run in after:
        video = stack.catalog.get_video(run["conf"]["video_id"])
        assert video["status"] == "ready" and video["dag_run_id"] == run["dag_run_id"]
    assert stack.client.wait_for_run(DAG, app_run, timeout=120)["state"] == "success"  # the app's only run
    handled = runs(stack, EVENTS_DAG)
    assert handled and {r["state"] for r in handled} == {"success"}, handled  # test event, junk: no failed run
    assert not [r for r in runs(stack, "watch_uploads") if r["state"] == "failed"]
