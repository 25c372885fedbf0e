"""What the event-driven watcher takes from SQS messages: the objects S3's ObjectCreated records name (keys
decoded), nothing from test events, other events, other buckets or prefixes, and malformed bodies or records
skipped without an exception. Bodies are in the structure S3 sends (AWS's notification-content-structure)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from vodflow.triggers.events import NotifiedObject, notified_objects, objects_in_body

PREFIX = "uploads/"


def record(key: str, event: str = "ObjectCreated:Put", bucket: str = "vodflow", etag: str = "abc") -> dict[str, Any]:
    return {"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", "eventName": event,
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "uploads",
                   "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                   "object": {"key": key, "size": 10, "eTag": etag, "sequencer": "0055AED6DCD90281E5"}}}


def message(body: Any, message_id: str = "m1") -> dict[str, Any]:
    return {"MessageId": message_id, "ReceiptHandle": "r", "MD5OfBody": "x",
            "Body": body if isinstance(body, str) else json.dumps(body)}


@dataclass
class AssetEvent:  # the fields of Airflow's AssetEvent that the DAG reads
    extra: dict[str, Any] = field(default_factory=dict)
    id: int = 1


def triggered(*messages: dict[str, Any]) -> AssetEvent:
    return AssetEvent({"from_trigger": True, "payload": {"status": "success", "message_batch": list(messages)}})


def test_a_created_object_with_an_encoded_key() -> None:
    body = {"Records": [record("uploads/2026/12/02/ab/My+clip+%C3%A9t%C3%A9%2B1.mp4",
                               "ObjectCreated:CompleteMultipartUpload", etag='"d41d8cd98f00b204e9800998ecf8427e-3"')]}
    assert objects_in_body(json.dumps(body)) == [
        NotifiedObject("vodflow", "uploads/2026/12/02/ab/My clip été+1.mp4", "d41d8cd98f00b204e9800998ecf8427e-3",
                       "ObjectCreated:CompleteMultipartUpload")]


def test_test_events_other_events_and_malformed_bodies_give_nothing(caplog) -> None:
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-12-02T06:00:00.000Z",
                  "Bucket": "vodflow", "RequestId": "5582815E1AEA5ADF", "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3e"}
    for body in (json.dumps(test_event), "not json {", "", "null", "[1, 2]", json.dumps({"Records": "x"}),
                 json.dumps({"detail-type": "Object Created"}),
                 json.dumps({"Records": [record("uploads/a.mp4", "ObjectRemoved:Delete")]}),
                 json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}, {"s3": {}}, None, "x"]})):
        assert objects_in_body(body) == [], body
    assert "not JSON" in caplog.text and "test event" in caplog.text and "not an S3 event" in caplog.text


def test_a_batch_keeps_the_good_records_and_skips_the_rest() -> None:
    body = {"Records": [record("uploads/one.mp4"), {"eventName": "ObjectCreated:Put"},
                        record("uploads/two.mp4", etag="e2")]}
    assert [o.key for o in objects_in_body(json.dumps(body))] == ["uploads/one.mp4", "uploads/two.mp4"]


def test_an_sns_envelope_is_opened() -> None:
    inner = {"Records": [record("uploads/via-sns.mp4")]}
    envelope = {"Type": "Notification", "MessageId": "n1", "TopicArn": "arn:aws:sns:us-east-1:1:t",
                "Message": json.dumps(inner)}
    assert [o.key for o in objects_in_body(json.dumps(envelope))] == ["uploads/via-sns.mp4"]
    assert objects_in_body(json.dumps({**envelope, "Message": "{broken"})) == []


def test_triggering_events_give_distinct_watchable_objects_in_order() -> None:
    first = message({"Records": [record("uploads/a.mp4"), record("elsewhere/b.mp4"),
                                 record("uploads/c.mp4", bucket="other-bucket"), record("uploads/folder/")]}, "m1")
    again = message({"Records": [record("uploads/a.mp4")]}, "m2")  # a duplicate delivery of the same object
    newer = message({"Records": [record("uploads/a.mp4", etag="new"), record("uploads/d.mp4")]}, "m3")
    events = [triggered(first, again), AssetEvent({"from_trigger": True, "payload": {}}), AssetEvent({}),
              triggered(message("garbage"), newer)]
    found = notified_objects(events, "vodflow", PREFIX)
    assert [(o.key, o.etag) for o in found] == [("uploads/a.mp4", "abc"), ("uploads/a.mp4", "new"),
                                                ("uploads/d.mp4", "abc")]
