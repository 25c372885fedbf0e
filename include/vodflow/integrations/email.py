"""Email when a video is ready or failed, through Airflow's SMTP machinery (the smtp provider's SmtpHook and
an Airflow connection, ``smtp_default`` unless ``smtp_conn_id`` says otherwise).

A short message a person reads: the title, the status, the reason when it failed, and links (the video's page
in Airflow, the playlist when media is public). Composing is pure; sending never raises for the video's sake.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vodflow.media.escaping import one_line
from vodflow.request import EMAIL_PATTERN

log = logging.getLogger(__name__)
_EMAIL = re.compile(EMAIL_PATTERN)


@dataclass(frozen=True)
class VideoMail:
    to: tuple[str, ...]
    subject: str
    html: str


def recipients(requested: str | Iterable[str] | None, default: Iterable[str]) -> tuple[str, ...]:
    """The run's ``notify_email`` (one address or a list), else the ``notify_email`` setting; valid ones only."""
    chosen = [requested] if isinstance(requested, str) else list(requested or []) or list(default)
    return tuple(dict.fromkeys(a.strip() for a in chosen if isinstance(a, str) and _EMAIL.match(a.strip())))


def compose(video: Mapping[str, Any], to: tuple[str, ...], links: Mapping[str, str | None]) -> VideoMail:
    """Subject ``[vodflow] <title>: ready`` (or ``failed (<code>)``) and a few lines of HTML, all escaped."""
    title = str(video.get("title") or video["id"])
    ready = video.get("status") == "ready" and not video.get("error_code")
    state = "ready" if ready else f"failed ({video.get('error_code') or 'unknown'})"
    # One line of text (escaping.one_line): the email module takes a CR, LF, NEL (U+0085) or other line break in a
    # subject for the start of another header, or refuses to send it.
    subject = one_line(f"[vodflow] {title}: {state}", 200)
    rows = [f"<p><b>{html.escape(title)}</b> is <b>{html.escape(state)}</b>.</p>",
            f"<p>Video <code>{html.escape(str(video['id']))}</code>"
            + (f", {float(video['duration']):.1f} s" if video.get("duration") else "") + ".</p>"]
    if not ready and video.get("error_message"):
        rows.append(f"<p>Reason: {html.escape(str(video['error_message']))}</p>")
    for label, url in links.items():
        if url:
            rows.append(f'<p>{html.escape(label)}: <a href="{html.escape(url, quote=True)}">'
                        f"{html.escape(url)}</a></p>")
    return VideoMail(to=to, subject=subject, html="\n".join(rows))


def send(mail: VideoMail, smtp_conn_id: str, from_email: str | None = None) -> bool:
    """Send through the SMTP connection; False (logged) when it could not be sent."""
    if not mail.to:
        return False
    try:
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        with SmtpHook(smtp_conn_id=smtp_conn_id) as hook:
            hook.send_email_smtp(to=list(mail.to), subject=mail.subject, html_content=mail.html,
                                 from_email=from_email or hook.from_email or "vodflow@localhost")
    except Exception as exc:  # an unreachable or refusing SMTP server never fails the video
        log.warning("Email to %s not sent (%s): %s", ", ".join(mail.to), type(exc).__name__, exc)
        return False
    log.info("Email sent to %s: %s", ", ".join(mail.to), mail.subject)
    return True
