"""The watcher lists only what can be new: with 2,000 old uploads in an old date partition, a poll costs two
LIST calls (counted at the S3 endpoint, through a gateway in front of moto's server; listing everything would
take three pages) and still finds a new upload in today's partition; folders that are not dated are listed
whole, so their new objects are found too."""

from __future__ import annotations

import dataclasses
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from tests.integration.triggers.test_uploads import gated_storage  # noqa: F401 - the fixture
from vodflow.catalog import UploadObject, catalog_for_connection
from vodflow.settings import load_settings
from vodflow.storage import Storage
from vodflow.triggers import watch

pytestmark = pytest.mark.integration
OLD = 2000


def lists(gateway) -> list[str]:
    return [r for r in gateway.requests if r.startswith("GET ") and "list-type=2" in r]


def test_old_partitions_cost_no_list_pages(gated_storage):  # noqa: F811 - the fixture
    storage, gateway = gated_storage
    prefix = f"uploads/scale-{uuid.uuid4().hex[:8]}/"
    today = f"{prefix}{datetime.now(UTC):%Y/%m/%d}/"

    def put(key: str, client=storage.client) -> None:
        client.put_object(Bucket="vodflow", Key=key, Body=b"\x00" * 16)

    direct = Storage("aws_default", "vodflow").client  # the old uploads straight to moto: faster, not counted
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda key: put(key, direct), [f"{prefix}2025/01/01/{i:05d}/old.mp4" for i in range(OLD)]))
    settings = dataclasses.replace(load_settings(), aws_conn_id="vodflow_gated", watch_prefix=prefix,
                                   watch_settle_seconds=0)
    catalog = catalog_for_connection(settings.catalog_conn_id)
    # The watcher has been running: its newest claim is from just now (the 2,000 are from long ago).
    first = f"{today}{uuid.uuid4().hex}/first.mp4"
    put(first)
    head = storage.client.head_object(Bucket="vodflow", Key=first)
    claimed = UploadObject("vodflow", first, head["ETag"].strip('"'), 16, head["LastModified"])
    catalog.claim_uploads("vodflow", [claimed], watch.video_id_for, watch.upload_run_id)
    catalog.mark_uploads_triggered([watch.upload_run_id(watch.video_id_for(claimed))])

    def poll() -> list[str]:
        gateway.requests.clear()
        runs = [r for r in watch.claim_new_uploads(settings) if r["conf"]["source"].startswith(
            f"s3://vodflow/{prefix}")]
        watch.mark_started([r["trigger_run_id"] for r in runs], settings)
        return sorted(r["conf"]["source"] for r in runs)

    new = f"{today}{uuid.uuid4().hex}/new.mp4"
    put(new)
    assert poll() == [f"s3://vodflow/{new}"]
    assert len(lists(gateway)) == 2, lists(gateway)  # the delimited top level, and today's dates (StartAfter)
    assert any("start-after=" in r for r in lists(gateway))
    assert poll() == [] and len(lists(gateway)) == 2

    put(f"{prefix}imports/legacy.mp4")  # not dated: its folder is listed whole, every time
    assert poll() == [f"s3://vodflow/{prefix}imports/legacy.mp4"]
    assert len(lists(gateway)) == 3, lists(gateway)
    since = watch.watermark(catalog, settings).since
    assert len(watch.list_candidates(storage.client, "vodflow", prefix, since)) == 3  # not the 2,000 old ones


def test_an_app_triggered_upload_is_never_started_by_the_watcher(airflow_env):
    """The checked trigger writes the watcher's claim (``starting``, ``known`` once the run exists) before the run
    exists; the watcher, even with no settle time and the run's register still to come, does not start the object
    a second time."""
    prefix = f"uploads/app-{uuid.uuid4().hex[:8]}/"
    storage = Storage("aws_default", "vodflow")
    mine, other = f"{prefix}{uuid.uuid4().hex}/mine.mp4", f"{prefix}{uuid.uuid4().hex}/theirs.mp4"
    for key in (mine, other):
        storage.client.put_object(Bucket="vodflow", Key=key, Body=b"\x00" * 16)
    settings = dataclasses.replace(load_settings(), watch_prefix=prefix, watch_settle_seconds=0)
    assert watch.record_app_trigger(f"s3://vodflow/{mine}", None, "app__test", settings)
    assert not watch.record_app_trigger(f"s3://vodflow/{mine}", None, "app__again", settings)  # claimed once
    assert not watch.record_app_trigger(f"s3://vodflow/{prefix}missing.mp4", None, "app__x", settings)
    runs = [r for r in watch.claim_new_uploads(settings) if r["conf"]["source"].startswith(f"s3://vodflow/{prefix}")]
    assert [r["conf"]["source"] for r in runs] == [f"s3://vodflow/{other}"]
    watch.mark_started([r["trigger_run_id"] for r in runs], settings)


def test_the_triggerer_fires_for_a_new_object_with_the_bounded_listing(airflow_env):
    """The deferred half (aiobotocore in the triggerer): the same listing, a dated and an undated object."""
    import asyncio

    prefix = f"uploads/async-{uuid.uuid4().hex[:8]}/"
    storage = Storage("aws_default", "vodflow")
    dated = f"{prefix}{datetime.now(UTC):%Y/%m/%d}/{uuid.uuid4().hex}/a.mp4"
    for key in (dated, f"{prefix}folder/b.mp4", f"{prefix}2025/01/01/x/old.mp4"):
        storage.client.put_object(Bucket="vodflow", Key=key, Body=b"\x00" * 16)
    since = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    trigger = watch.NewUploadsTrigger("aws_default", "vodflow", prefix, since.isoformat(), [], 0, 0.2)

    async def first_event():
        async for event in trigger.run():
            return event.payload

    payload = asyncio.run(asyncio.wait_for(first_event(), 60))
    assert payload["status"] == "found" and sorted(payload["keys"]) == sorted([dated, f"{prefix}folder/b.mp4"])
