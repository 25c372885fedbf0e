"""Webhook delivery over real HTTP to loopback receivers: signatures, retries, no redirects, and the SSRF guard
(refusals decided before any connection: the listeners at refused addresses count zero connections)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import threading
import time

import pytest

from tests.receivers import Listener, Receiver, Trickler
from vodflow.integrations import webhooks
from vodflow.integrations.netguard import DestinationRefused, check_destination

pytestmark = pytest.mark.integration
SECRET = "whsec_test_only"
EVENT = {"id": "evt_1", "type": "video.ready", "video_id": "v1", "version": 1}
FAST = webhooks.DeliveryPolicy(attempts=3, backoff_seconds=0.05, timeout_seconds=3, allowed_hosts=("127.0.0.1",))


def receiver_verifies(header: str, body: bytes, secret: str = SECRET) -> bool:
    """The verifier of docs/integrations.md#webhooks, written again here from the contract (not with vodflow's code)."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"]) and abs(time.time() - int(fields["t"])) < 300


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(**kwargs) -> Receiver:
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    for r in made:
        r.stop()


def test_an_event_arrives_signed(receiver):
    hook = receiver()
    delivery = webhooks.deliver(hook.url, EVENT, SECRET, FAST)
    assert delivery.delivered and delivery.attempts == ["200"]
    [got] = hook.received
    assert got.path == "/hooks/vodflow" and json.loads(got.body) == EVENT
    assert got.headers["Content-Type"] == "application/json"
    assert receiver_verifies(got.headers["Vodflow-Signature"], got.body)
    assert not receiver_verifies(got.headers["Vodflow-Signature"], got.body, "another secret")
    assert not receiver_verifies(got.headers["Vodflow-Signature"], got.body.replace(b"v1", b"v2"))
    assert webhooks.verify(SECRET, got.headers["Vodflow-Signature"], got.body)


def test_a_5xx_is_retried_with_the_same_event_and_a_4xx_is_not(receiver):
    flaky = receiver(answers=[500, 503, 200])
    delivery = webhooks.deliver(flaky.url, EVENT, SECRET, FAST)
    assert delivery.delivered and delivery.attempts == ["500", "503", "200"]
    assert len({r.body for r in flaky.received}) == 1 and len(flaky.received) == 3

    down = receiver(answers=[500])
    delivery = webhooks.deliver(down.url, EVENT, SECRET, FAST)
    assert not delivery.delivered and len(down.received) == FAST.attempts

    refusing = receiver(answers=[400])
    delivery = webhooks.deliver(refusing.url, EVENT, SECRET, FAST)
    assert not delivery.delivered and len(refusing.received) == 1


def test_a_timeout_is_retried():
    silent = Listener()  # accepts, never answers
    try:
        policy = webhooks.DeliveryPolicy(attempts=2, backoff_seconds=0.01, timeout_seconds=0.5,
                                         allowed_hosts=("127.0.0.1",))
        delivery = webhooks.deliver(f"http://127.0.0.1:{silent.port}/", EVENT, SECRET, policy)
        assert not delivery.delivered and len(delivery.attempts) == 2
        assert all("timed out" in a for a in delivery.attempts), delivery.attempts
    finally:
        silent.stop()


def test_a_redirect_is_not_followed(receiver):
    target = Listener()
    try:
        hook = receiver(answers=[302], location=f"http://127.0.0.1:{target.port}/internal")
        delivery = webhooks.deliver(hook.url, EVENT, SECRET, FAST)
        assert not delivery.delivered and "redirect" in (delivery.refused or "")
        assert len(hook.received) == 1  # not retried either
        time.sleep(0.3)
        assert target.connections == 0
    finally:
        target.stop()


@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}/", "http://[::1]:{port}/", "http://localhost:{port}/",
                                 "http://[::ffff:127.0.0.1]:{port}/", "http://0.0.0.0:{port}/",
                                 "http://2130706433:{port}/"])
def test_loopback_is_refused_before_connecting(url):
    listeners = [Listener("127.0.0.1")]
    with contextlib.suppress(OSError):  # no IPv6 loopback here: the IPv4 listener still proves nothing was sent
        listeners.append(Listener("::1"))
    try:
        for listener in listeners:
            target = url.format(port=listener.port)
            with pytest.raises(DestinationRefused):
                check_destination(target)
            delivery = webhooks.deliver(target, EVENT, SECRET, webhooks.DeliveryPolicy(attempts=2))
            assert not delivery.delivered and delivery.refused and delivery.attempts == []
        time.sleep(0.3)
        assert [listener.connections for listener in listeners] == [0] * len(listeners)
    finally:
        for listener in listeners:
            listener.stop()


@pytest.mark.parametrize("address", ["10.1.2.3", "169.254.169.254", "192.168.0.10", "172.16.5.4", "100.64.0.1",
                                     "224.0.0.1", "240.0.0.1", "::", "fe80::1", "fc00::1", "ff02::1",
                                     "::ffff:10.0.0.1", "::ffff:169.254.169.254", "2001:db8::1"])
def test_non_public_addresses_are_refused(address):
    literal = f"[{address}]" if ":" in address else address
    with pytest.raises(DestinationRefused):
        check_destination(f"http://{literal}/hook")
    # The same address behind a name (the resolver is injected: nothing is looked up or sent)
    with pytest.raises(DestinationRefused, match="resolves to"):
        check_destination("https://hooks.example.net/x", resolver=lambda host, port: [address])


def test_a_name_with_any_private_address_is_refused_and_public_ones_pass():
    with pytest.raises(DestinationRefused):
        check_destination("https://mixed.example.net/", resolver=lambda h, p: ["93.184.216.34", "10.0.0.5"])
    ok = check_destination("https://app.example.net:8443/h?x=1", resolver=lambda h, p: ["93.184.216.34"])
    assert (ok.address, ok.host, ok.port, ok.path) == ("93.184.216.34", "app.example.net", 8443, "/h?x=1")
    for bad in ("ftp://example.net/", "http:///nohost", "http://user:pw@example.net/", "javascript:alert(1)"):
        with pytest.raises(DestinationRefused):
            check_destination(bad, resolver=lambda h, p: ["93.184.216.34"])


def test_the_connection_goes_to_the_checked_address_not_a_new_lookup(receiver):
    """An allowlisted name that only our resolver knows: the request reaches the address checked, with the
    name in the Host header. A second lookup (rebinding) would fail: the system cannot resolve it."""
    hook = receiver()
    policy = webhooks.DeliveryPolicy(attempts=1, allowed_hosts=("hooks.vodflow.test",))
    url = f"http://hooks.vodflow.test:{hook.port}/h"
    delivery = webhooks.deliver(url, EVENT, SECRET, policy, resolver=lambda host, port: ["127.0.0.1"])
    assert delivery.delivered
    assert hook.received[0].headers["Host"] == f"hooks.vodflow.test:{hook.port}"


def test_dns_that_changes_after_the_trigger_is_checked_again(receiver):
    """Public when triggered, loopback when sending (rebinding): refused at send time, nothing sent."""
    hook = receiver()
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    resolver = lambda host, port: next(answers)  # noqa: E731
    url = f"http://rebind.example.net:{hook.port}/h"
    webhooks.check_callback(url, (), resolver)  # the trigger-time check passes
    delivery = webhooks.deliver(url, EVENT, SECRET, webhooks.DeliveryPolicy(attempts=1), resolver=resolver)
    assert not delivery.delivered and "127.0.0.1" in (delivery.refused or "")
    assert hook.received == []


def test_a_trickling_receiver_cannot_hold_a_delivery_past_its_deadline(caplog):
    """A receiver that answers one byte every 9 s (each in time for a 10 s socket timeout, the answer after
    minutes): each attempt ends at its own 10 s, and the delivery — retries included — at its 15 s deadline.
    The callback URL's query (an app's token) is in no log line and not in the outcome."""
    slow = Trickler(interval=9.0)
    policy = webhooks.DeliveryPolicy(attempts=4, backoff_seconds=0.05, timeout_seconds=10, deadline_seconds=15,
                                     allowed_hosts=("127.0.0.1",))
    outcome: list[webhooks.Delivery] = []
    sender = threading.Thread(target=lambda: outcome.append(
        webhooks.deliver(f"{slow.url}?token=app-secret-token", EVENT, SECRET, policy)), daemon=True)
    try:
        started = time.monotonic()
        sender.start()
        sender.join(timeout=15 + 5)
        elapsed = time.monotonic() - started
        assert not sender.is_alive(), "the delivery outlived its deadline"
        [delivery] = outcome
        assert elapsed <= 15 + 1.5, elapsed
        assert not delivery.delivered and delivery.expired
        assert 1 <= slow.requests <= 2 and len(delivery.attempts) == slow.requests
        assert all("timed out" in attempt for attempt in delivery.attempts), delivery.attempts
        assert slow.request_lines[0].startswith("POST /hooks/slow?token=app-secret-token ")  # sent as given
        assert delivery.url == slow.url
        assert "app-secret-token" not in caplog.text and "token=" not in caplog.text
        assert slow.url in caplog.text  # the redacted URL still says where it went
        print(f"\ntrickling receiver: delivery ended after {elapsed:.1f} s ({len(delivery.attempts)} attempts)")
    finally:
        slow.stop()


def test_the_callback_urls_query_and_userinfo_are_never_logged(receiver, caplog):
    hook = receiver(answers=[500, 404])
    delivery = webhooks.deliver(f"{hook.url}?sig=abc123secret&exp=1", EVENT, SECRET, FAST)
    assert not delivery.delivered and delivery.attempts == ["500", "404"]
    assert hook.received[0].path == "/hooks/vodflow?sig=abc123secret&exp=1"
    assert "abc123secret" not in caplog.text and hook.url in caplog.text
    assert delivery.url == hook.url
