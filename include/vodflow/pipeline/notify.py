"""Telling the app: a signed webhook for every terminal state of a video (ready, or failed — register failures
included). A receiver that is down or slow never fails or holds up the video beyond the bounded retries.

Once per event: each outcome (webhook or email) is recorded in the video's history with the event's id, which
is derived from (video, version, type); a task retry that finds the outcome recorded sends nothing again. A try
that died while sending left no outcome, so its retry sends the same event (same id) once more: receivers drop
duplicates by id. Bounded: a delivery ends within ``webhook_deadline_seconds`` however the receiver answers,
and email within the SMTP connection's timeout."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from vodflow.catalog import FAILED, READY
from vodflow.integrations import email, webhooks
from vodflow.layout import parse_source_uri
from vodflow.pipeline.services import Job, Services
from vodflow.settings import Settings

log = logging.getLogger(__name__)
WEBHOOK, EMAIL = "webhook", "email"  # the history lines that record a notification's outcome


def webhook_secret(settings: Settings) -> str | None:
    """The signing secret: the password of the Airflow connection ``webhook_conn_id``, else ``webhook_secret``."""
    try:
        from airflow.sdk import BaseHook

        password = BaseHook.get_connection(settings.webhook_conn_id).password
        if password:
            return str(password)
    except Exception:  # no such connection (AirflowNotFoundException and friends)
        log.debug("No connection %s; using the webhook_secret setting", settings.webhook_conn_id)
    return settings.webhook_secret or None


def public_url(settings: Settings, uri: str | None) -> str | None:
    """Where a player fetches a published object, when media is public (``public_base_url``)."""
    if not uri or not settings.public_base_url:
        return None
    return f"{settings.public_base_url}/{parse_source_uri(uri).key}"


def video_event(services: Services, job: Job) -> dict[str, Any] | None:
    """The event for the video's state now, or None while it is not terminal."""
    video = services.catalog.get_video(job.video_id)
    if video is None or video["status"] not in (READY, FAILED):
        return None
    kind = webhooks.READY_EVENT if video["status"] == READY and not video["error_code"] else webhooks.FAILED_EVENT
    settings = services.settings
    return webhooks.build_event(kind, video, job.version, {
        "master_url": public_url(settings, video.get("master_uri")),
        "poster_url": public_url(settings, video.get("poster_uri"))})


def notify(services: Services, job: Job, policy: webhooks.DeliveryPolicy | None = None) -> None:
    """Tell the app (signed webhook to callback_url) and people (email), each once per event; neither ever fails
    the video."""
    event = video_event(services, job)
    if event is None:
        return
    done = services.catalog.notified(job.video_id, event["id"])
    if job.callback_url and WEBHOOK not in done:
        send_webhook(services, job, event, policy)
    to = email.recipients(job.notify_email, services.settings.notify_email)
    if to and EMAIL not in done:
        send_email(services, job, event, to)


def send_email(services: Services, job: Job, event: dict[str, Any], to: tuple[str, ...]) -> None:
    settings = services.settings
    video = services.catalog.get_video(job.video_id) or {}
    page = f"{settings.ui_base_url}/vodflow/ui/video?id={job.video_id}" if settings.ui_base_url else None
    mail = email.compose(video, to, {"Video page": page, "Playlist": event.get("master_url")})
    sent = email.send(mail, settings.smtp_conn_id, settings.email_from or None)
    with contextlib.suppress(Exception):  # the history line (also what stops a retry re-sending) is best effort
        services.catalog.add_event(job.video_id, EMAIL, event_id=event["id"], to=list(to), sent=sent,
                                   subject=mail.subject)


def send_webhook(services: Services, job: Job, event: dict[str, Any],
                 policy: webhooks.DeliveryPolicy | None = None) -> None:
    """POST the signed event to the request's callback_url; the outcome goes to the video's history."""
    if not job.callback_url:
        return
    settings = services.settings
    secret = webhook_secret(settings)
    if not secret:
        log.warning("No webhook secret (connection %s or [vodflow] webhook_secret): sending unsigned",
                    settings.webhook_conn_id)
    policy = policy or webhooks.DeliveryPolicy(
        attempts=settings.webhook_attempts, backoff_seconds=settings.webhook_backoff_seconds,
        timeout_seconds=settings.webhook_timeout_seconds, allowed_hosts=settings.webhook_allowed_hosts,
        deadline_seconds=settings.webhook_deadline_seconds)
    delivery = webhooks.deliver(job.callback_url, event, secret, policy)
    try:  # the URL as delivery has it: redacted (its query may carry the app's token)
        services.catalog.add_event(job.video_id, WEBHOOK, event_id=delivery.event_id, type=event["type"],
                                   url=delivery.url, delivered=delivery.delivered, attempts=delivery.attempts,
                                   refused=delivery.refused, expired=delivery.expired)
    except Exception:  # never fail the video over it (a retry then sends the same event id again)
        log.exception("Could not record the webhook's outcome")
