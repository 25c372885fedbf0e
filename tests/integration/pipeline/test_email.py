"""Email on ready and failed, through Airflow's SMTP hook and connection, to a real SMTP server on loopback
(aiosmtpd) that receives the message: the right recipients, subject and link; a dead SMTP server never fails
the video."""

from __future__ import annotations

import email
import email.header
import json
import uuid
from collections.abc import Iterator
from email.message import Message

import pytest
from aiosmtpd.controller import Controller

from tests.integration.pipeline.test_notify import configure, restore
from tests.receivers import Listener
from vodflow import errors, pipeline
from vodflow.devtools.devstack import free_port
from vodflow.errors import BadInput

pytestmark = pytest.mark.integration


class Inbox:
    """aiosmtpd handler: keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 OK"


def smtp_connection(port: int) -> str:
    return json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": port,
                       "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "vodflow@example.com",
                                 "timeout": 5, "retry_limit": 0}})


@pytest.fixture
def inbox(airflow_env) -> Iterator[Inbox]:
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    saved = configure(AIRFLOW_CONN_SMTP_DEFAULT=smtp_connection(port), notify_email="ops@example.com",
                      ui_base_url="https://airflow.example.com", public_base_url="https://cdn.example.com/vod")
    try:
        yield handler
    finally:
        controller.stop()
        restore(saved)


def body(message: Message) -> str:
    return "".join(part.get_payload(decode=True).decode() for part in message.walk()
                   if part.get_content_type() == "text/html")


def test_ready_is_mailed_with_its_links(inbox, media):
    services = pipeline.Services.load()
    key = f"uploads/{uuid.uuid4().hex[:6]}/mail.mp4"
    services.storage.client.upload_file(str(media["small"]), "vodflow", key)
    params = {"source": f"s3://vodflow/{key}", "ladder": ["240p"], "title": "Launch <video>",
              "notify_email": ["editor@example.com", "ops@example.org"]}
    job, probed, plan, items = pipeline.prepare(params, "run-mail", lambda step, job: None, services)
    results = [pipeline.transcode(job, probed, plan, item, services) for item in items]
    pipeline.publish(job, plan, results, services)
    pipeline.discard_unpublished(job, services)
    [(to, message)] = inbox.messages
    assert to == ["editor@example.com", "ops@example.org"]  # the run's addresses replace the default
    assert message["Subject"] == "[vodflow] Launch <video>: ready"
    assert message["From"] == "vodflow@example.com"
    text = body(message)
    assert "Launch &lt;video&gt;" in text and "<video>" not in text  # escaped
    assert f'href="https://airflow.example.com/vodflow/ui/video?id={job.video_id}"' in text
    assert f"https://cdn.example.com/vod/videos/{job.video_id}/v1/hls/master.m3u8" in text


def test_a_failure_is_mailed_to_the_default_address_with_its_reason(inbox):
    services = pipeline.Services.load()
    with pytest.raises(BadInput):
        pipeline.register({"source": "s3://vodflow/uploads/never-arrived.mp4", "title": "Lost"}, "run-lost",
                          services)
    [(to, message)] = inbox.messages
    assert to == ["ops@example.com"] and message["Subject"] == f"[vodflow] Lost: failed ({errors.SOURCE_MISSING})"
    assert "There is no object at s3://vodflow/uploads/never-arrived.mp4." in body(message)


def test_an_unreachable_smtp_server_never_fails_the_video(airflow_env, media):
    dead = Listener()  # accepts and never speaks SMTP: the hook times out
    dead.stop()  # now nothing listens there: connection refused
    saved = configure(AIRFLOW_CONN_SMTP_DEFAULT=smtp_connection(dead.port), notify_email="ops@example.com")
    try:
        services = pipeline.Services.load()
        key = f"uploads/{uuid.uuid4().hex[:6]}/nomail.mp4"
        services.storage.client.upload_file(str(media["small"]), "vodflow", key)
        job, probed, plan, items = pipeline.prepare({"source": f"s3://vodflow/{key}", "ladder": ["240p"]},
                                                    "run-nomail", lambda step, job: None, services)
        results = [pipeline.transcode(job, probed, plan, item, services) for item in items]
        assert pipeline.publish(job, plan, results, services)["published"]
        assert services.catalog.get_video(job.video_id)["status"] == "ready"
        [note] = [e for e in services.catalog.get_events(job.video_id) if e["kind"] == "email"]
        assert note["detail"]["sent"] is False
    finally:
        restore(saved)


def test_a_title_with_line_breaks_is_mailed_as_one_subject_line(inbox):
    """A title (here from a request; a file name gives one too) with a NEL and a line separator, each followed by
    a header: the message is sent, with one Subject line holding the whole title, no added header or recipient."""
    services = pipeline.Services.load()
    title = "Lost\x85Bcc: evil@attacker.example\u2028X-Evil: 1"
    with pytest.raises(BadInput):
        pipeline.register({"source": "s3://vodflow/uploads/never-arrived-2.mp4", "title": title}, "run-lost-2",
                          services)
    [(to, message)] = inbox.messages
    assert to == ["ops@example.com"]
    subject = str(email.header.make_header(email.header.decode_header(message["Subject"])))
    assert subject == f"[vodflow] Lost Bcc: evil@attacker.example X-Evil: 1: failed ({errors.SOURCE_MISSING})"
    assert message["Bcc"] is None and message["X-Evil"] is None
