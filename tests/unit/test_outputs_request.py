"""The ``outputs`` conf field, unknown keys (the checked trigger and the middleware on Airflow's endpoint), the
download file names, the MP4 rendition choice and the storyboard's plan and WebVTT."""

from __future__ import annotations

import asyncio
import json

import pytest

from vodflow.layout import content_disposition, download_filename
from vodflow.media.encode.ladder import plan_ladder
from vodflow.media.pictures.storyboard import plan_storyboard, storyboard_vtt
from vodflow.media.pictures.thumbnails import plan_pictures
from vodflow.pipeline.outputs import handlers_for
from vodflow.pipeline.outputs.downloads import audio_source, mp4_renditions
from vodflow.pipeline.work import EncodePlan
from vodflow.request import RequestError, check_fields
from vodflow.web.conf_guard import MAX_BODY, TriggerConfGuard


@pytest.mark.parametrize("conf,field", [
    ({"outputs": ["mp4"]}, "outputs"),  # no streaming output
    ({"outputs": ["hls", "flv"]}, "outputs"),
    ({"outputs": []}, "outputs"),
    ({"outputs": ["hls", "hls"]}, "outputs"),
    ({"outputs": "hls"}, "outputs"),
    ({"mp4_renditions": ["9000p"]}, "mp4_renditions"),
    ({"mp4_renditions": "best"}, "mp4_renditions"),
    ({"ladderr": ["720p"]}, "ladderr"),
    ({"output": ["hls"]}, "output"),
])
def test_bad_outputs_and_unknown_keys_are_refused_naming_the_field(conf, field):
    with pytest.raises(RequestError) as caught:
        check_fields(conf)
    assert caught.value.field == field and str(caught.value).startswith(
        f"unknown request field {field!r}" if field in ("ladderr", "output") else f"{field}:")


def test_good_outputs_pass():
    check_fields({"outputs": ["hls", "cmaf", "mp4", "webm", "audio", "storyboard"], "mp4_renditions": ["720p", "360p"]})
    check_fields({"outputs": ["cmaf"], "mp4_renditions": "all"})
    check_fields({"outputs": None, "mp4_renditions": None})


def _asgi(body: dict | bytes, path: str = "/api/v2/dags/transcode_video/dagRuns",
          chunk: int = 10) -> tuple[int, dict | None]:
    reached: list[bytes] = []

    async def airflow(scope, receive, send):
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message["body"], message.get("more_body", False)
        reached.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    sent: list[dict] = []
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    pieces = [raw[i:i + chunk] for i in range(0, len(raw), chunk)] or [b""]
    messages = [{"type": "http.request", "body": piece, "more_body": i < len(pieces) - 1}
                for i, piece in enumerate(pieces)]
    read = 0

    async def receive():
        nonlocal read
        read += 1
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": []}
    asyncio.run(TriggerConfGuard(airflow)(scope, receive, send))
    if reached:
        assert reached == [raw]  # Airflow gets the body as sent, in one piece
        return sent[0]["status"], None
    assert read == len(pieces)  # a refused body is read whole, so the client gets the answer, not a reset
    return sent[0]["status"], json.loads(sent[1]["body"])


def test_the_middleware_passes_other_paths_and_callers_airflow_refuses_untouched():
    """The conf checks answer only a caller Airflow lets trigger the DAG (tests/integration/web/test_conf_guard.py):
    an anonymous request goes to Airflow as it came, which answers 401 itself."""
    bad = {"logical_date": None, "conf": {"source": "s3://vodflow/a.mp4", "callback_url": "http://127.0.0.1:9/h"}}
    assert _asgi(bad)[0] == 200
    assert _asgi({"conf": {"ladderr": 1}}, "/api/v2/dags/other_dag/dagRuns")[0] == 200


def test_the_replayed_body_ends_with_the_clients_own_receive():
    """After the body the guard read, Airflow's next receive() is the client's own (a disconnect reaches it),
    not a disconnect made up by the guard."""
    raw = json.dumps({"logical_date": None, "conf": {"source": "s3://vodflow/a.mp4"}}).encode()
    client = [{"type": "http.request", "body": raw, "more_body": False}, {"type": "http.disconnect", "real": True}]
    seen: list[dict] = []

    async def airflow(scope, receive, send):
        seen.extend([await receive(), await receive()])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive():
        return client.pop(0)

    async def send(message):
        pass

    scope = {"type": "http", "method": "POST", "path": "/api/v2/dags/transcode_video/dagRuns", "headers": []}
    asyncio.run(TriggerConfGuard(airflow)(scope, receive, send))
    assert seen == [{"type": "http.request", "body": raw, "more_body": False},
                    {"type": "http.disconnect", "real": True}]


def test_the_middleware_refuses_a_body_over_1_mib_instead_of_letting_it_through_unchecked():
    conf = {"source": "s3://vodflow/a.mp4", "ladderr": "x", "title": "t"}
    raw = json.dumps({"logical_date": None, "conf": conf, "note": "x" * MAX_BODY}).encode()
    status, body = _asgi(raw, chunk=65536)
    assert status == 413 and "1,048,576" in body["detail"]
    ok = json.dumps({"logical_date": None, "conf": {"source": "s3://vodflow/a.mp4"}, "note": "x" * 1000}).encode()
    assert _asgi(ok, chunk=65536)[0] == 200


@pytest.mark.parametrize("title,name", [
    ("My clip", "My clip.mp4"), ("../../etc/passwd", "etc_passwd.mp4"), ('a"b;c\\d', "a_b_c_d.mp4"),
    ("   ", "video.mp4"), ("rm -rf $(x)", "rm -rf _(x).mp4"), ("x" * 300, "x" * 100 + ".mp4"),
])
def test_download_names_are_safe(title, name):
    assert download_filename(title, ".mp4") == name


def test_content_disposition_has_an_ascii_and_a_utf8_name():
    assert content_disposition("Été 2026.mp4") == (
        "attachment; filename=\"Ete 2026.mp4\"; filename*=UTF-8''%C3%89t%C3%A9%20%C3%A02026.mp4".replace(
            "%C3%A02026", "2026"))
    assert content_disposition("日本.mp3").startswith('attachment; filename="video.mp3"')


def _plan(has_audio: bool = True) -> EncodePlan:
    ladder = plan_ladder(1920, 1080, "30", has_audio, "default")
    return EncodePlan(renditions=tuple(ladder.renditions), pictures=plan_pictures(1920, 1080, 30.0, "30"),
                      duration=30.0)


def test_which_renditions_become_mp4_downloads():
    plan = _plan()
    assert mp4_renditions(plan, "top") == ["1080p"]
    assert mp4_renditions(plan, "all") == ["1080p", "720p", "480p", "360p"]
    assert mp4_renditions(plan, ["360p", "720p"]) == ["720p", "360p"]
    assert mp4_renditions(plan, ["2160p"]) == ["1080p"]  # none of them in this ladder: the top one
    assert audio_source(plan) == "1080p" and audio_source(_plan(has_audio=False)) is None


def test_handlers_are_dispatched_by_kind():
    assert [h.kind for h in handlers_for(["hls", "storyboard", "mp4"])] == ["storyboard", "mp4"]
    with pytest.raises(ValueError, match="flv"):
        handlers_for(["hls", "flv"])


@pytest.mark.parametrize("duration,interval", [(13, 1), (100, 1), (101, 2), (600, 10), (3600, 60),
                                               (7200, 120), (36000, 360)])
def test_the_storyboard_interval_grows_with_the_duration(duration, interval):
    plan = plan_storyboard(duration, 1920, 1080)
    assert plan.interval == interval and (plan.tile_width, plan.tile_height) == (160, 90)
    assert plan_storyboard(10, 720, 1280).tile_height == 284


def test_the_storyboard_vtt_covers_the_duration_across_sheets():
    plan = plan_storyboard(61.5, 640, 360)
    text = storyboard_vtt(plan, 61.5, 62)
    cues = text.split("\n\n")[1:]
    assert text.startswith("WEBVTT\n\n") and len([c for c in cues if c]) == 62
    assert cues[0] == "00:00:00.000 --> 00:00:01.000\nsprite_000.jpg#xywh=0,0,160,90"
    assert cues[26] == "00:00:26.000 --> 00:00:27.000\nsprite_001.jpg#xywh=160,0,160,90"
    assert cues[61].startswith("00:01:01.000 --> 00:01:01.500\nsprite_002.jpg#xywh=160,180,160,90")
