"""Signed webhooks, the way Stripe and Mux send them: one JSON event per terminal state of a video.

Body ``{"id", "type": "video.ready"|"video.failed"|"video.playable", "created", "video_id", "version", …}``; header
``Vodflow-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`` so a receiver can check who sent it
and refuse replays (an old ``t``). The event id is derived from (video, version, type): a retry (ours, or an
Airflow task retry) sends the same id, so a receiver can drop duplicates.

Delivery: the destination is checked (:mod:`vodflow.integrations.netguard`) again right before sending — DNS
may have changed since the trigger — and the connection goes to the checked address (Host header and TLS SNI
keep the name, certificates are verified). Redirects are never followed (a 3xx is a refusal: it could point
anywhere). 5xx, 429 and network errors/timeouts are retried with exponential backoff; other 4xx are not.

Time is bounded by wall clock, not per socket operation: a receiver that trickles a byte every few seconds would
never trip a socket timeout. Each attempt has a total deadline (``timeout_seconds``; its socket is shut down when
it passes) and the whole delivery, retries and backoff included, one more (``deadline_seconds``): a slow or dead
receiver costs the task that notifies at most that long. The callback URL is only ever logged or recorded
redacted (``scheme://host/path``): its query often carries the app's token.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vodflow.integrations.netguard import Destination, DestinationRefused, Resolver, check_destination, system_resolver
from vodflow.redact import redact_text, redact_url

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "Vodflow-Signature"
READY_EVENT, FAILED_EVENT = "video.ready", "video.failed"
PLAYABLE_EVENT = "video.playable"  # early playback: sent once, before video.ready (``pipeline.early``)
USER_AGENT = "vodflow-webhooks/1"
MIN_ATTEMPT_SECONDS = 0.5  # less time than this left in the delivery's deadline: no attempt is started


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard to try: ``attempts`` in all, waiting ``backoff_seconds`` × 2ⁿ between them; each attempt done
    within ``timeout_seconds`` and the whole delivery within ``deadline_seconds`` (wall clock, however slow the
    receiver answers)."""

    attempts: int = 4
    backoff_seconds: float = 1.0
    timeout_seconds: float = 10.0
    allowed_hosts: tuple[str, ...] = ()
    deadline_seconds: float = 60.0


@dataclass
class Delivery:
    """What happened to one event: each attempt's HTTP status (or error), and whether it was accepted.
    ``url`` is the redacted callback URL (no query, no userinfo): this is what logs and the catalog get."""

    url: str
    event_id: str
    delivered: bool = False
    attempts: list[str] = field(default_factory=list)
    refused: str | None = None
    expired: bool = False  # the delivery's deadline ended it before an answer was accepted


def event_id(video_id: str, version: int | None, kind: str) -> str:
    digest = hashlib.sha256(f"{video_id}\x00{version}\x00{kind}".encode()).hexdigest()
    return f"evt_{digest[:32]}"


def build_event(kind: str, video: Mapping[str, Any], version: int | None, urls: Mapping[str, str | None],
                created: int | None = None) -> dict[str, Any]:
    """The event for a video row (``urls``: master_url, poster_url, … where a player or person finds it)."""
    return {"id": event_id(str(video["id"]), version, kind), "type": kind,
            "created": int(created if created is not None else time.time()),
            "video_id": video["id"], "version": version, "status": video.get("status"),
            "title": video.get("title"), "error_code": video.get("error_code"),
            "error_message": video.get("error_message"), "duration": video.get("duration"),
            "master_uri": video.get("master_uri"), "poster_uri": video.get("poster_uri"), **urls}


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Vodflow-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, tolerance_seconds: float = 300, now: float | None = None) -> bool:
    """What a receiver does (docs/integrations.md#webhooks has it standalone): the MAC matches, the time is recent."""
    try:
        fields = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance_seconds:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


class _AttemptDeadline:
    """Ends one attempt at a fixed time: when it passes, the attempt's socket is shut down, so a read blocked on a
    receiver that trickles (each byte within the socket timeout) returns at once and the attempt fails."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _AttemptDeadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def opened(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            if self.expired:
                sock.close()
                raise TimeoutError("timed out before the connection was made")
            self._sockets.append(sock)
        return sock

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:  # the raw socket: a TLS socket wrapped around it sees the end too
                with contextlib.suppress(OSError):  # already closed
                    sock.shutdown(socket.SHUT_RDWR)


def _connection(destination: Destination, timeout: float, deadline: _AttemptDeadline
                ) -> http.client.HTTPConnection:
    """An HTTP(S) connection to the checked address; Host and SNI (and certificate checks) use the name."""
    def connect(_address: tuple[str, int], timeout: float = timeout, source_address: Any = None) -> socket.socket:
        error: OSError | None = None
        for address in destination.addresses:  # e.g. localhost: ::1 first, then 127.0.0.1
            try:
                return deadline.opened(socket.create_connection((address, destination.port), timeout,
                                                                source_address))
            except TimeoutError:
                raise
            except OSError as exc:
                error = exc
        raise error or OSError("no address to connect to")

    if destination.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            destination.host, destination.port, timeout=timeout, context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(destination.host, destination.port, timeout=timeout)
    conn._create_connection = connect  # type: ignore[attr-defined] - http.client opens its socket through this
    return conn


def _post_once(destination: Destination, body: bytes, headers: Mapping[str, str], seconds: float) -> int:
    """One POST, answered in full within ``seconds`` (wall clock) or a TimeoutError."""
    with _AttemptDeadline(seconds) as deadline:
        conn = _connection(destination, seconds, deadline)
        try:
            conn.request("POST", destination.path, body=body, headers=dict(headers))
            response = conn.getresponse()
            response.read(65536)
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            if deadline.expired:
                raise TimeoutError(f"timed out: no complete answer within {seconds:g} s") from exc
            raise
        finally:
            conn.close()
    return status


def deliver(url: str, event: Mapping[str, Any], secret: str | None, policy: DeliveryPolicy = DeliveryPolicy(),
            resolver: Resolver = system_resolver, sleep: Callable[[float], None] = time.sleep) -> Delivery:
    """Send ``event`` to ``url`` within ``policy.deadline_seconds``; never raises for the receiver's sake (the
    outcome is in the Delivery)."""
    body = json.dumps(event, separators=(",", ":"), sort_keys=True, default=str).encode()
    shown = redact_url(url)
    delivery = Delivery(url=shown, event_id=str(event.get("id")))
    ends = time.monotonic() + policy.deadline_seconds
    for attempt in range(policy.attempts):
        wait = policy.backoff_seconds * 2 ** (attempt - 1) if attempt else 0.0
        if ends - time.monotonic() - wait < MIN_ATTEMPT_SECONDS:
            delivery.expired = True
            log.warning("Webhook %s to %s: not delivered within its deadline of %g s (%d attempt(s))",
                        delivery.event_id, shown, policy.deadline_seconds, attempt)
            return delivery
        if wait:
            sleep(wait)
        try:  # checked before each attempt: the name may resolve elsewhere by now
            destination = check_destination(url, policy.allowed_hosts, resolver)
        except DestinationRefused as exc:
            delivery.refused = redact_text(str(exc))
            log.warning("Webhook %s to %s refused: %s", delivery.event_id, shown, delivery.refused)
            return delivery
        timestamp = int(time.time())
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                   "Vodflow-Event-Id": delivery.event_id}
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, timestamp, body)
        seconds = min(policy.timeout_seconds, ends - time.monotonic())
        try:
            status = _post_once(destination, body, headers, seconds)
        except (OSError, http.client.HTTPException) as exc:  # refused, reset, timed out, TLS: try again
            delivery.attempts.append(redact_text(f"{type(exc).__name__}: {exc}"))
            log.warning("Webhook %s to %s, attempt %d: %s", delivery.event_id, shown, attempt + 1,
                        delivery.attempts[-1])
            continue
        delivery.attempts.append(str(status))
        if 200 <= status < 300:
            delivery.delivered = True
            return delivery
        if 300 <= status < 400:
            delivery.refused = f"the receiver answered {status} (a redirect); redirects are not followed"
            log.warning("Webhook %s to %s: %s", delivery.event_id, shown, delivery.refused)
            return delivery
        if status < 500 and status != 429:
            log.warning("Webhook %s to %s: %d, not retried", delivery.event_id, shown, status)
            return delivery
        log.warning("Webhook %s to %s, attempt %d: HTTP %d", delivery.event_id, shown, attempt + 1, status)
    return delivery


def allowed_hosts(setting: str) -> tuple[str, ...]:
    """The ``webhook_allowed_hosts`` setting (comma-separated) as a tuple."""
    return tuple(h.strip() for h in setting.split(",") if h.strip())


def check_callback(url: str | None, allowlist: Iterable[str], resolver: Resolver = system_resolver) -> None:
    """At trigger time and at register: DestinationRefused when ``url`` would not be called."""
    if url:
        check_destination(url, tuple(allowlist), resolver)
