"""Outbound destinations vodflow may call (webhooks): public addresses only, unless a host is allowlisted.

A callback URL is someone else's input. Without this check it reaches the machine's own services (127.0.0.1,
compose service names), the cloud metadata endpoint (169.254.169.254) or the private network: SSRF. The check
resolves the host and classifies *every* address it resolves to before any packet is sent; the sender then
connects to the checked address itself (never re-resolving), so DNS that changes between the check and the
connection (rebinding) cannot redirect it. Pure apart from the resolver, which is a parameter.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from vodflow.errors import Refused

Resolver = Callable[[str, int], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class DestinationRefused(Refused, ValueError):
    """The URL must not be called: not http(s), no host, or a non-public address (the message says which)."""


@dataclass(frozen=True)
class Destination:
    """A checked URL: where to connect (``address``) and what to say (``host`` for Host/SNI, ``path``)."""

    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]  # every address checked, in the resolver's order: the only ones connected to
    allowlisted: bool

    @property
    def address(self) -> str:
        return self.addresses[0]


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host`` (IPv4 and IPv6)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def refusal(address: IPAddress) -> str | None:
    """Why this address is not public, or None when it is. IPv4-mapped/compatible IPv6 is judged as IPv4."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or (address.sixtofour if address.sixtofour else None)
        if mapped is not None:
            return refusal(mapped)
        if address.scope_id:
            return "a scoped (link-local) address"
    checks = (("loopback", address.is_loopback), ("link-local", address.is_link_local),
              ("private", address.is_private), ("multicast", address.is_multicast),
              ("unspecified", address.is_unspecified), ("reserved", address.is_reserved),
              ("site-local", getattr(address, "is_site_local", False)))
    for name, hit in checks:
        if hit:
            return f"a {name} address"
    if not address.is_global:  # shared (100.64/10), documentation ranges, …
        return "not a public address"
    return None


def host_allowed(host: str, allowlist: Iterable[str]) -> bool:
    """``host`` equals an allowlist entry (case-insensitive); an entry ``.example.com`` allows its subdomains."""
    host = host.lower().rstrip(".")
    for entry in (e.strip().lower().rstrip(".") for e in allowlist):
        if not entry:
            continue
        if host == entry.lstrip(".") or (entry.startswith(".") and host.endswith(entry)):
            return True
    return False


def check_destination(url: str, allowlist: Iterable[str] = (), resolver: Resolver = system_resolver
                      ) -> Destination:
    """Parse, resolve and classify ``url``; DestinationRefused explains a refusal. Nothing is sent."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise DestinationRefused(f"callback_url must be http or https, not {scheme or 'nothing'!r}")
    if parts.username is not None or parts.password is not None:
        raise DestinationRefused("callback_url must not carry credentials")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise DestinationRefused("callback_url has no host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise DestinationRefused("callback_url has an invalid port") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    allowlisted = host_allowed(host, allowlist)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = resolver(host, port)
        except (OSError, UnicodeError) as exc:
            raise DestinationRefused(f"callback_url's host {host!r} does not resolve ({exc})") from None
        if not addresses:
            raise DestinationRefused(f"callback_url's host {host!r} does not resolve")
    if not allowlisted:
        for address in addresses:  # every address: a name resolving to one public and one private is refused
            why = refusal(ipaddress.ip_address(address.split("%", 1)[0]))
            if why is not None:
                raise DestinationRefused(f"callback_url's host {host!r} resolves to {address}, {why}; "
                                         f"only public addresses (or hosts in webhook_allowed_hosts) are called")
    return Destination(scheme=scheme, host=host, port=port, path=path, addresses=tuple(addresses),
                       allowlisted=allowlisted)
