"""The event-driven watcher's claim, on moto's S3 and the catalog in Postgres: a notified object is claimed once
(a duplicate delivery, the poller having claimed it first, or an app having triggered it itself start nothing),
an object gone since its notification is skipped, and a replaced one is claimed as it is now."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from vodflow import layout
from vodflow.settings import load_settings
from vodflow.storage import Storage
from vodflow.triggers import events, watch

pytestmark = pytest.mark.integration


def sources(runs: list[dict], prefix: str) -> list[str]:
    return sorted(r["conf"]["source"] for r in runs if r["conf"]["source"].startswith(f"s3://vodflow/{prefix}"))


def test_notified_objects_are_claimed_exactly_once_whoever_saw_them_first(airflow_env):
    prefix = f"uploads/events-{uuid.uuid4().hex[:8]}/"
    settings = dataclasses.replace(load_settings(), watch_prefix=prefix, watch_settle_seconds=0)
    storage = Storage("aws_default", "vodflow")
    keys = {name: f"{prefix}{name}.mp4" for name in ("new", "polled", "app", "gone", "replaced")}
    etags = {name: storage.client.put_object(Bucket="vodflow", Key=key, Body=name.encode() * 8)["ETag"].strip('"')
             for name, key in keys.items()}
    # The poller claimed one (and started its run); an app triggered another itself.
    polled = watch.claim_new_uploads(dataclasses.replace(settings, watch_prefix=keys["polled"]))
    assert sources(polled, prefix) == [f"s3://vodflow/{keys['polled']}"]
    watch.mark_started([r["trigger_run_id"] for r in polled], settings)
    assert watch.record_app_trigger(f"s3://vodflow/{keys['app']}", None, "app__events", settings)
    storage.client.delete_object(Bucket="vodflow", Key=keys["gone"])
    storage.client.put_object(Bucket="vodflow", Key=keys["replaced"], Body=b"other bytes")

    notified = [events.NotifiedObject("vodflow", key, etags[name], "ObjectCreated:Put") for name, key in keys.items()]
    runs = events.claim_notified_uploads(notified, settings)
    assert sources(runs, prefix) == sorted(f"s3://vodflow/{keys[n]}" for n in ("new", "replaced"))
    replaced = next(r for r in runs if r["conf"]["source"].endswith("replaced.mp4"))
    now = storage.client.head_object(Bucket="vodflow", Key=keys["replaced"])["ETag"].strip('"')
    assert replaced["conf"]["video_id"] == layout.derive_video_id("vodflow", keys["replaced"], now)
    assert all(r["trigger_run_id"] == watch.upload_run_id(r["conf"]["video_id"]) for r in runs)
    watch.mark_started([r["trigger_run_id"] for r in runs], settings)

    # The same notifications delivered again, and the poller looking afterwards: nothing more to start.
    assert sources(events.claim_notified_uploads(notified, settings), prefix) == []
    assert sources(watch.claim_new_uploads(settings), prefix) == []
