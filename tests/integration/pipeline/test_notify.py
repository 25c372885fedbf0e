"""The pipeline tells the app: a signed event for every terminal state, register failures included; and
register refuses sources outside the allowlist and callbacks to non-public addresses (runs triggered past the
plugin's checks). Real S3 (moto over HTTP), real Postgres catalog, real HTTP receivers on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.integration.integrations.test_webhooks import receiver_verifies
from tests.receivers import Listener, Receiver, Trickler
from vodflow import errors, layout, pipeline
from vodflow.errors import BadInput
from vodflow.integrations.webhooks import event_id

pytestmark = pytest.mark.integration
SECRET = "whsec_pipeline_test"


def configure(**settings: str) -> dict[str, str | None]:
    """Set [vodflow] settings (and connections) in the environment as a worker would read them."""
    saved = {}
    for key, value in settings.items():
        name = key if key.startswith("AIRFLOW_CONN_") else f"AIRFLOW__VODFLOW__{key.upper()}"
        saved[name] = os.environ.get(name)
        os.environ[name] = value
    from vodflow.settings import load_settings

    load_settings.cache_clear()
    return saved


def restore(saved: dict[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    from vodflow.settings import load_settings

    load_settings.cache_clear()


@contextlib.contextmanager
def webhooks_to_a_receiver(secret: str = SECRET, **settings: str) -> Iterator[tuple[pipeline.Services, Receiver]]:
    """Webhooks allowed to a loopback receiver only, signed with ``secret`` from the Airflow connection."""
    receiver = Receiver()
    saved = configure(webhook_allowed_hosts="127.0.0.1", webhook_backoff_seconds="0.05", **settings,
                      AIRFLOW_CONN_VODFLOW_WEBHOOK=json.dumps({"conn_type": "generic", "password": secret}))
    try:
        yield pipeline.Services.load(), receiver
    finally:
        receiver.stop()
        restore(saved)


@pytest.fixture
def hooked(airflow_env) -> Iterator[tuple[pipeline.Services, Receiver]]:
    with webhooks_to_a_receiver() as services_and_receiver:
        yield services_and_receiver


def upload(services: pipeline.Services, path, key: str) -> str:
    services.storage.client.upload_file(str(path), "vodflow", key)
    return f"s3://vodflow/{key}"


def events(receiver: Receiver) -> list[dict]:
    for got in receiver.received:
        assert receiver_verifies(got.headers["Vodflow-Signature"], got.body, SECRET), "every event is signed"
    return [json.loads(got.body) for got in receiver.received]


def test_ready_sends_one_signed_video_ready_event(hooked, media):
    services, receiver = hooked
    receiver.answers = [200, 500, 200]  # video.playable (early playback) first; ready's first attempt meets a
    # broken receiver: retried
    source = upload(services, media["small"], f"uploads/{uuid.uuid4().hex[:6]}/hook.mp4")
    params = {"source": source, "callback_url": receiver.url, "ladder": ["240p"]}
    job, probed, plan, items = pipeline.prepare(params, "run-hook", lambda step, job: None, services)
    results = [pipeline.transcode(job, probed, plan, item, services) for item in items]
    pipeline.publish(job, plan, results, services)
    pipeline.discard_unpublished(job, services)
    playable, first, event = events(receiver)
    assert (playable["type"], playable["version"]) == ("video.playable", 1)  # once, before ready
    assert first == event  # the retry is the same event (same id): a receiver can drop duplicates
    assert event["type"] == "video.ready" and event["video_id"] == job.video_id and event["version"] == 1
    assert event["id"] == event_id(job.video_id, 1, "video.ready")
    assert event["status"] == "ready" and event["error_code"] is None
    assert event["master_uri"] == f"s3://vodflow/videos/{job.video_id}/v1/hls/master.m3u8"
    history = [e for e in services.catalog.get_events(job.video_id)
               if e["kind"] == "webhook" and e["detail"]["type"] == "video.ready"]
    assert len(history) == 1 and history[0]["detail"]["attempts"] == ["500", "200"]


def test_a_register_failure_is_sent_too(hooked):
    services, receiver = hooked
    params = {"source": "s3://vodflow/uploads/nothing-here.mp4", "callback_url": receiver.url}
    with pytest.raises(BadInput) as caught:
        pipeline.register(params, "run-missing-hook", services)
    assert caught.value.code == errors.SOURCE_MISSING
    [event] = events(receiver)
    video_id = layout.derive_video_id("vodflow", "uploads/nothing-here.mp4", "")
    assert (event["type"], event["video_id"], event["error_code"]) == ("video.failed", video_id, "source_missing")
    assert event["version"] == 1


def test_a_bad_input_failure_is_sent(hooked, media):
    services, receiver = hooked
    source = upload(services, media.bad("text.mp4"), f"uploads/{uuid.uuid4().hex[:6]}/notes.mp4")
    job = pipeline.register({"source": source, "callback_url": receiver.url}, "run-bad-hook", services)
    with pytest.raises(BadInput) as caught:
        pipeline.probe_source(services, job)
    pipeline.record_failure(job.to_dict(), "probe", None, caught.value, 1, services)
    pipeline.discard_unpublished(job, services)  # the teardown sends nothing more: the failure was already told
    [event] = events(receiver)
    assert (event["type"], event["error_code"]) == ("video.failed", errors.NOT_A_VIDEO)


def test_a_loopback_callback_is_refused_at_register_and_never_called(airflow_env, media):
    listener = Listener()
    services = pipeline.Services.load()  # default settings: no allowlisted hosts
    try:
        source = upload(services, media["small"], f"uploads/{uuid.uuid4().hex[:6]}/ssrf.mp4")
        with pytest.raises(BadInput) as caught:
            pipeline.register({"source": source, "callback_url": f"http://127.0.0.1:{listener.port}/",
                               "video_id": "ssrf-refused"}, "run-ssrf", services)
        assert caught.value.code == errors.INVALID_REQUEST and "loopback" in caught.value.message
        assert services.catalog.get_video("ssrf-refused")["status"] == "failed"
        assert listener.connections == 0
    finally:
        listener.stop()


def test_a_source_outside_the_allowlist_is_refused_without_reading_it(airflow_env):
    services = pipeline.Services.load()
    with pytest.raises(BadInput) as caught:  # default allowlist: the vodflow bucket only
        pipeline.register({"source": "s3://private-bucket/secrets/x.mp4", "video_id": "other-bucket"}, "run-ob",
                          services)
    assert caught.value.code == errors.INVALID_REQUEST and "private-bucket" in caught.value.message
    saved = configure(source_buckets="vodflow", source_prefixes="uploads/")
    try:
        services = pipeline.Services.load()
        with pytest.raises(BadInput) as caught:
            pipeline.register({"source": "s3://vodflow/videos/x/v1/hls/master.m3u8", "video_id": "bad-prefix"},
                              "run-bp", services)
        assert caught.value.code == errors.INVALID_REQUEST and "prefix" in caught.value.message
    finally:
        restore(saved)


def test_a_trickling_receiver_never_holds_publish_beyond_the_deadline(airflow_env, media, caplog):
    """The app's receiver answers one byte every 9 s (within a 10 s socket timeout each time): publish still ends
    within `webhook_deadline_seconds` (12 here) of the switch, the video `ready`, the delivery recorded as ended
    by its deadline. The callback URL's query (the app's token) is in no log line and no catalog field."""
    slow = Trickler(interval=9.0)
    saved = configure(webhook_allowed_hosts="127.0.0.1", webhook_backoff_seconds="0.05",
                      webhook_timeout_seconds="10", webhook_deadline_seconds="12")
    try:
        services = pipeline.Services.load()
        source = upload(services, media["small"], f"uploads/{uuid.uuid4().hex[:6]}/slow-hook.mp4")
        params = {"source": source, "callback_url": f"{slow.url}?token=app-secret-token", "ladder": ["240p"]}
        job, probed, plan, items = pipeline.prepare(params, "run-slow-hook", lambda step, job: None, services)
        results = [pipeline.transcode(job, probed, plan, item, services) for item in items]
        publishing = threading.Thread(target=pipeline.publish, args=(job, plan, results, services), daemon=True)
        publishing.start()
        publishing.join(timeout=120)
        ended = datetime.now(UTC)
        assert not publishing.is_alive(), "the receiver held publish"
        video = services.catalog.get_video(job.video_id)
        assert video["status"] == "ready"
        history = services.catalog.get_events(job.video_id)
        switched = next(e["at"] for e in history if e["kind"] == "status" and e["detail"]["status"] == "ready")
        held = (ended - switched).total_seconds()
        print(f"\npublish ended {held:.1f} s after its switch (deadline 12 s), {slow.requests} request(s)")
        assert held <= 12 + 3, held
        [hook] = [e["detail"] for e in history if e["kind"] == "webhook" and e["detail"]["type"] == "video.ready"]
        assert not hook["delivered"] and hook["expired"] and hook["url"] == slow.url
        assert slow.request_lines[0].startswith("POST /hooks/slow?token=app-secret-token ")
        recorded = json.dumps([history, {k: v for k, v in video.items() if k != "request"}], default=str)
        assert "app-secret-token" not in recorded and "app-secret-token" not in caplog.text
    finally:
        slow.stop()
        restore(saved)
