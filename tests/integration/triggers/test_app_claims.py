"""An app's own run (the checked trigger) and the upload watcher, on moto's S3 and the catalog in Postgres: a
trigger that fails never makes the watcher skip the upload — the watcher starts it on its next poll, once, with the
conf the app asked for — and a trigger that succeeds is never started a second time by the watcher."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import socket
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from airflow.providers.common.compat.sdk import DagRunTriggerException
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from fastapi import HTTPException, Response

from vodflow import errors, layout, pipeline
from vodflow.catalog import catalog_for_connection, uploads
from vodflow.catalog.queries import APP_TRIGGER_GRACE
from vodflow.dag_ids import TRANSCODE_VIDEO
from vodflow.errors import BadInput
from vodflow.settings import load_settings
from vodflow.storage import Storage
from vodflow.triggers import watch
from vodflow.web import conf_guard
from vodflow.web import trigger as app_trigger

pytestmark = pytest.mark.integration


class RefusingOnce:
    """A trigger like Airflow's API on a bad moment: the first call is refused, the next ones start the run."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionRefusedError("the Airflow API refused the connection")


def _setup(name: str) -> tuple[str, str, object]:
    prefix = f"uploads/appclaim-{uuid.uuid4().hex[:8]}/"
    storage = Storage("aws_default", "vodflow")
    key = f"{prefix}{uuid.uuid4().hex}/{name}"
    storage.client.put_object(Bucket="vodflow", Key=key, Body=name.encode() * 64)
    settings = dataclasses.replace(load_settings(), watch_prefix=prefix, watch_settle_seconds=0)
    return prefix, key, settings


def poll(settings, prefix: str) -> list[dict]:
    """One watcher poll (claim → start → mark started), as the watch_uploads DAG does it; the runs it starts."""
    runs = [r for r in watch.claim_new_uploads(settings) if r["conf"]["source"].startswith(f"s3://vodflow/{prefix}")]
    watch.mark_started([r["trigger_run_id"] for r in runs], settings)
    return runs


def stored_conf(settings, key: str) -> str | None:
    catalog = catalog_for_connection(settings.catalog_conn_id)
    with catalog.engine.connect() as conn:
        return conn.execute(sa.select(uploads.c.conf).where(uploads.c.key == key)).scalar_one()


def state_of(settings, key: str) -> tuple[str, str]:
    catalog = catalog_for_connection(settings.catalog_conn_id)
    with catalog.engine.connect() as conn:
        row = conn.execute(sa.select(uploads.c.state, uploads.c.dag_run_id).where(uploads.c.key == key)).one()
    return row.state, row.dag_run_id


def test_a_failed_app_trigger_is_started_by_the_watcher_on_its_next_poll_exactly_once(airflow_env):
    prefix, key, settings = _setup("refused.mp4")
    source = f"s3://vodflow/{key}"
    # The watcher has already looked (the object is not new to it any more) when the app starts its run.
    trigger = RefusingOnce()
    with pytest.raises(watch.AppTriggerFailed) as failed:
        watch.start_app_run(source, "app-chosen-id", "app__refused", trigger, settings)
    assert failed.value.handed_over and trigger.calls == 1
    assert state_of(settings, key) == ("claimed", "app__refused")
    # The next poll starts it, with the app's run id and video id (a run that exists after all: a no-op) …
    assert catalog_for_connection(settings.catalog_conn_id).pending_claims("vodflow") >= 1
    [run] = poll(settings, prefix)
    assert run == {"trigger_run_id": "app__refused", "conf": {"source": source, "video_id": "app-chosen-id"}}
    assert state_of(settings, key) == ("triggered", "app__refused")
    # … and only that one: later polls, the event-driven watcher's claim included, start nothing more.
    assert poll(settings, prefix) == [] and poll(settings, prefix) == []


class AirflowRefusingOnce:
    """Airflow's ``trigger_dag`` as the checked endpoint calls it, refusing the first call; records what it got."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, dag_id: str, **kwargs) -> None:
        self.calls.append({"dag_id": dag_id, **kwargs})
        if len(self.calls) == 1:
            raise ConnectionRefusedError("the Airflow API refused the connection")


@pytest.fixture(autouse=True)
def no_in_flight_quota(monkeypatch):
    """These runs are made by a stand-in for Airflow's trigger: no Airflow metadata DB holds them to be counted
    (the limits have tests of their own: tests/integration/web/test_ratelimits.py)."""
    monkeypatch.setenv("AIRFLOW__VODFLOW__QUOTA_VIDEOS_IN_FLIGHT", "0")


@dataclasses.dataclass
class User:
    name: str = "app"

    def get_name(self) -> str:
        return self.name


def watchers_trigger(run: dict) -> DagRunTriggerException:
    """What the watch_uploads DAG's ``start_transcode`` (TriggerDagRunOperator, one per run) asks Airflow for."""
    operator = TriggerDagRunOperator(task_id="start_transcode", trigger_dag_id=TRANSCODE_VIDEO,
                                     skip_when_already_exists=True, **run)
    with pytest.raises(DagRunTriggerException) as asked:
        operator.execute({})
    return asked.value


def test_the_watcher_starts_a_refused_app_run_with_the_conf_the_app_asked_for(airflow_env, monkeypatch):
    """The watcher's run is the app's run: title, callback (the app's webhook), ladder — the whole checked conf,
    not just the object — with the app's run id, so it is started once."""
    prefix, key, settings = _setup("asked.mp4")
    monkeypatch.setenv("AIRFLOW__VODFLOW__WEBHOOK_ALLOWED_HOSTS", "127.0.0.1")
    load_settings.cache_clear()
    conf = {"source": f"s3://vodflow/{key}", "video_id": f"asked-{uuid.uuid4().hex[:8]}", "title": "Été ✓ asked",
            "callback_url": "http://127.0.0.1:9/hooks/vodflow?token=t0k", "ladder": ["240p", "360p"],
            "outputs": ["hls", "mp4"]}
    airflow = AirflowRefusingOnce()
    monkeypatch.setattr("airflow.api.common.trigger_dag.trigger_dag", airflow)
    try:
        with pytest.raises(HTTPException) as refused:
            app_trigger.start_video(User(), Response(), dict(conf))
    finally:
        load_settings.cache_clear()  # no allowed host left cached for the tests after this one
    assert refused.value.status_code == 503 and "upload watcher will start" in refused.value.detail
    [asked] = airflow.calls
    assert asked["conf"] == conf and asked["dag_id"] == TRANSCODE_VIDEO
    assert state_of(settings, key) == ("claimed", asked["run_id"])
    [run] = poll(settings, prefix)
    started = watchers_trigger(run)
    assert (started.trigger_dag_id, started.dag_run_id, started.conf) == (TRANSCODE_VIDEO, asked["run_id"], conf)
    assert state_of(settings, key) == ("triggered", asked["run_id"]) and poll(settings, prefix) == []
    assert stored_conf(settings, key) is None  # the run has it now: the claim keeps no callback URL


def test_an_app_conf_without_a_video_id_gets_the_claims(airflow_env):
    """The claim's video id is the one the app's run would have derived; the watcher's run names it."""
    prefix, key, settings = _setup("derived.mp4")
    conf = {"source": f"s3://vodflow/{key}", "title": "Derived"}
    with pytest.raises(watch.AppTriggerFailed):
        watch.start_app_run(conf["source"], None, "app__derived", RefusingOnce(), settings, conf=conf)
    [run] = poll(settings, prefix)
    etag = Storage("aws_default", "vodflow").client.head_object(Bucket="vodflow", Key=key)["ETag"].strip('"')
    assert run["conf"] == {**conf, "video_id": layout.derive_video_id("vodflow", key, etag)}


def test_a_conf_is_only_kept_with_the_checked_triggers_claim(airflow_env):
    """Only the checked trigger's ``starting`` claim keeps a conf; the app's run confirmed, it is dropped."""
    _, key, settings = _setup("kept.mp4")
    conf = {"source": f"s3://vodflow/{key}", "title": "Kept"}
    claim = watch.record_app_trigger(conf["source"], None, "app__kept", settings, conf)
    assert json.loads(stored_conf(settings, key)) == conf
    catalog = catalog_for_connection(settings.catalog_conn_id)
    with pytest.raises(ValueError, match="starting claim"):
        catalog.record_app_upload(claim.obj, claim.video_id, "app__other", conf=conf)
    claim.started()
    assert state_of(settings, key) == ("known", "app__kept") and stored_conf(settings, key) is None


def test_a_successful_app_trigger_is_never_started_by_the_watcher(airflow_env):
    prefix, key, settings = _setup("started.mp4")
    trigger = RefusingOnce()
    trigger.calls = 1  # accepts at once
    watch.start_app_run(f"s3://vodflow/{key}", None, "app__started", trigger, settings)
    assert state_of(settings, key) == ("known", "app__started")
    assert poll(settings, prefix) == []


def test_an_app_claim_left_starting_by_a_dead_trigger_is_taken_over_after_the_grace(airflow_env):
    """The api-server died between the claim and the trigger: the claim stays ``starting``; the watcher leaves it
    alone while the trigger may still be under way, then starts it (same run id: once, even if it did exist)."""
    prefix, key, settings = _setup("orphan.mp4")
    claim = watch.record_app_trigger(f"s3://vodflow/{key}", None, "app__orphan", settings)
    assert claim is not None and state_of(settings, key) == ("starting", "app__orphan")
    assert poll(settings, prefix) == []  # within the grace: the app's trigger may still be running
    catalog = catalog_for_connection(settings.catalog_conn_id)
    with catalog.engine.begin() as conn:
        conn.execute(uploads.update().where(uploads.c.key == key).values(
            claimed_at=sa.func.now() - (APP_TRIGGER_GRACE + timedelta(seconds=5))))
    assert [r["trigger_run_id"] for r in poll(settings, prefix)] == ["app__orphan"]
    assert poll(settings, prefix) == []


def test_the_runs_register_confirms_its_claim(airflow_env):
    """A run whose trigger returned but whose confirmation was lost is confirmed by its own ``register``."""
    _, key, settings = _setup("confirmed.mp4")
    claim = watch.record_app_trigger(f"s3://vodflow/{key}", None, "app__confirmed", settings)
    catalog = catalog_for_connection(settings.catalog_conn_id)
    assert not catalog.record_app_upload(claim.obj, claim.video_id, "app__someone_else")  # not theirs to confirm
    assert state_of(settings, key) == ("starting", "app__confirmed")
    assert not catalog.record_app_upload(claim.obj, claim.video_id, "app__confirmed")  # what register does
    assert state_of(settings, key) == ("known", "app__confirmed")


def test_the_deferred_watcher_fires_for_a_claim_left_to_start(airflow_env):
    """The sensor waits in the triggerer, listing S3 for objects it has not seen; an app's failed trigger adds no
    object, so the trigger also asks the catalog for claims to start, and fires for them."""
    prefix, key, settings = _setup("deferred.mp4")
    storage = Storage("aws_default", "vodflow")
    mark = watch.watermark(catalog_for_connection(settings.catalog_conn_id), settings)
    with pytest.raises(watch.AppTriggerFailed):
        watch.start_app_run(f"s3://vodflow/{key}", None, "app__deferred", RefusingOnce(), settings)
    etag = storage.client.head_object(Bucket="vodflow", Key=key)["ETag"].strip('"')
    seen = [*sorted([k, e] for k, e in mark.seen), [key, etag]]  # the object is not new to the listing
    trigger = watch.NewUploadsTrigger("aws_default", "vodflow", prefix, mark.since.isoformat(), seen, 0, 0.2,
                                      settings.catalog_conn_id)

    async def first_event():
        async for event in trigger.run():
            return event.payload

    assert asyncio.run(asyncio.wait_for(first_event(), 60)) == {"status": "pending claims"}
    assert [r["trigger_run_id"] for r in poll(settings, prefix)] == ["app__deferred"]


def test_the_checked_trigger_refuses_a_caption_outside_the_source_allowlist(airflow_env, monkeypatch):
    """A caption is read by the workers like the source: one in a foreign bucket (or outside the allowed prefixes)
    is a 400 naming ``captions`` on both trigger endpoints, before any claim or run — not a 202 and a run that
    then fails — and ``register`` refuses it for runs started any other way, with the same words."""
    _, key, settings = _setup("captioned.mp4")
    conf = {"source": f"s3://vodflow/{key}", "captions": [
        {"source": f"s3://vodflow/{key}.en.srt", "language": "en"},
        {"source": "s3://private-bucket/secrets/talk.fr.srt", "language": "fr"}]}
    airflow = AirflowRefusingOnce()
    monkeypatch.setattr("airflow.api.common.trigger_dag.trigger_dag", airflow)
    with pytest.raises(HTTPException) as refused:
        app_trigger.start_video(User(), Response(), json.loads(json.dumps(conf)))
    detail = refused.value.detail
    assert refused.value.status_code == 400 and detail.startswith("captions"), detail
    assert "captions[1].source" in detail and "private-bucket" in detail
    assert airflow.calls == []  # no run asked for …
    catalog = catalog_for_connection(settings.catalog_conn_id)
    with catalog.engine.connect() as conn:  # … and no claim written
        assert conn.execute(sa.select(uploads.c.state).where(uploads.c.key == key)).first() is None
    # Airflow's own trigger endpoint: its guard answers the same 400.
    assert asyncio.run(conf_guard._refusal(json.dumps({"conf": conf}).encode())) == (400, {"detail": detail})
    # Runs started past both (e.g. `airflow dags trigger`): register fails them as invalid_request, same reason.
    with pytest.raises(BadInput) as caught:
        pipeline.register(conf, f"manual__{uuid.uuid4().hex[:8]}", pipeline.Services.load())
    assert caught.value.code == errors.INVALID_REQUEST and detail.removeprefix("captions: ") in caught.value.message

    monkeypatch.setenv("AIRFLOW__VODFLOW__SOURCE_PREFIXES", "uploads/")
    load_settings.cache_clear()
    try:  # an allowed bucket, but not under an allowed prefix
        with pytest.raises(app_trigger.RequestError) as outside:
            app_trigger.check_conf({"source": f"s3://vodflow/{key}", "captions": [
                {"source": "s3://vodflow/videos/other/v1/hls/subs/en/index.vtt", "language": "en"}]}, load_settings())
    finally:
        load_settings.cache_clear()
    assert outside.value.field == "captions" and "captions[0].source: key 'videos/other/" in str(outside.value)


def test_a_trigger_that_raises_after_making_the_run_is_answered_as_started(airflow_env, monkeypatch):
    """Airflow made the run, then the trigger call raised (its answer lost, a timeout) after the run's ``register``
    had confirmed the claim (``known``): the app is answered 202 with its run id — "try again" would start a
    second run of the same upload — and the watcher starts nothing."""
    prefix, key, settings = _setup("made.mp4")
    services = pipeline.Services.load()
    made: list[str] = []

    def made_then_raised(dag_id: str, **kwargs) -> None:
        made.append(kwargs["run_id"])
        pipeline.register(dict(kwargs["conf"]), kwargs["run_id"], services)  # the run's first task, already
        raise TimeoutError("the answer of the trigger was lost")

    monkeypatch.setattr("airflow.api.common.trigger_dag.trigger_dag", made_then_raised)
    conf = {"source": f"s3://vodflow/{key}", "title": "Made"}
    started = app_trigger.start_video(User(), Response(), dict(conf))  # returns: the endpoint's 202, no HTTPException
    assert started == {"dag_run_id": made[0], "conf": conf}
    assert state_of(settings, key) == ("known", made[0])
    assert poll(settings, prefix) == []


@pytest.mark.parametrize("watcher_started", [True, False], ids=["triggered", "claimed"])
def test_a_trigger_outlived_by_the_watchers_takeover_is_never_told_to_start_again(airflow_env, watcher_started):
    """The trigger took longer than ``APP_TRIGGER_GRACE`` and the watcher took its claim over before it raised:
    once the watcher has started the run (``triggered``) the app's run exists; while it is ``claimed``, the watcher
    will start it. Neither answer is "try again"."""
    prefix, key, settings = _setup(f"slow-{watcher_started}.mp4")
    catalog = catalog_for_connection(settings.catalog_conn_id)
    run_id = f"app__slow_{uuid.uuid4().hex[:8]}"

    def slow_then_raised() -> None:
        with catalog.engine.begin() as conn:
            conn.execute(uploads.update().where(uploads.c.key == key).values(
                claimed_at=sa.func.now() - (APP_TRIGGER_GRACE + timedelta(seconds=5))))
        runs = [r for r in watch.claim_new_uploads(settings) if r["trigger_run_id"] == run_id]
        if watcher_started:
            watch.mark_started([r["trigger_run_id"] for r in runs], settings)
        raise TimeoutError("the trigger timed out")

    if watcher_started:
        watch.start_app_run(f"s3://vodflow/{key}", None, run_id, slow_then_raised, settings)
        assert state_of(settings, key) == ("triggered", run_id)
    else:
        with pytest.raises(watch.AppTriggerFailed) as failed:
            watch.start_app_run(f"s3://vodflow/{key}", None, run_id, slow_then_raised, settings)
        assert failed.value.handed_over and state_of(settings, key) == ("claimed", run_id)
        assert [r["trigger_run_id"] for r in poll(settings, prefix)] == [run_id]
    assert poll(settings, prefix) == []


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released): a connection to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_catalog_that_is_down_never_stops_the_deferred_watcher(airflow_env, monkeypatch, caplog):
    """The catalog the trigger asks for claims left to start is down: the trigger never stalls the triggerer's
    event loop (every other trigger in it), logs a warning (once a minute, not each poll), and still reports a
    new object."""
    prefix = f"uploads/catalog-down-{uuid.uuid4().hex[:8]}/"
    monkeypatch.setenv("AIRFLOW_CONN_VODFLOW_CATALOG_DOWN", json.dumps({
        "conn_type": "postgres", "host": "127.0.0.1", "port": closed_port(), "login": "vodflow",
        "password": "unused", "schema": "vodflow"}))
    storage = Storage("aws_default", "vodflow")
    trigger = watch.NewUploadsTrigger("aws_default", "vodflow", prefix, watch.EPOCH.isoformat(), [], 0, 0.2,
                                      "vodflow_catalog_down")
    gaps: list[float] = []

    async def scenario() -> tuple[str, dict]:
        loop = asyncio.get_running_loop()

        async def another_trigger() -> None:
            last = loop.time()
            while True:
                await asyncio.sleep(0.05)
                gaps.append(loop.time() - last - 0.05)
                last = loop.time()

        # Warm-up: the S3 client's first set-up (botocore's models, on the loop: not what is measured here).
        warm = watch.NewUploadsTrigger("aws_default", "vodflow", prefix, watch.EPOCH.isoformat(), [], 0, 0.2)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(anext(warm.run()), 1.0)
        ticking = asyncio.create_task(another_trigger())
        first = asyncio.ensure_future(anext(trigger.run()))
        await asyncio.sleep(3)  # several polls: nothing new under the prefix, the catalog refusing each time
        assert not first.done(), first
        key = f"{prefix}{uuid.uuid4().hex}/late.mp4"
        await asyncio.to_thread(storage.client.put_object, Bucket="vodflow", Key=key, Body=b"late" * 64)
        event = await asyncio.wait_for(first, 60)
        ticking.cancel()
        return key, event.payload

    with caplog.at_level(logging.WARNING, logger="vodflow.triggers.watch"):
        key, payload = asyncio.run(scenario())
    assert payload == {"status": "found", "count": 1, "keys": [key]}
    warnings = [r.getMessage() for r in caplog.records if r.name == "vodflow.triggers.watch"]
    # Once: polls every 0.2 s here, but a catalog failure is logged once a minute.
    assert len(warnings) == 1 and "vodflow_catalog_down" in warnings[0] and "unavailable" in warnings[0], warnings
    assert "unused" not in " ".join(warnings)
    print(f"\nevent loop: longest stall {max(gaps) * 1000:.0f} ms over {len(gaps)} ticks; {len(warnings)} warnings")
    assert max(gaps) < 1.0, max(gaps)  # the catalog's connection retries held it 90 s
