"""Secrets that ride inside URLs, removed before a URL or a message reaches a log, the catalog or an event.

A presigned S3 URL carries its signature (``X-Amz-Signature=…``, or ``Signature=…`` for SigV2) in its query, and
an app's ``callback_url`` often carries a token there too; either is valid for hours to anyone who reads it. So
what is written down keeps only ``scheme://host[:port]/path``: enough to tell which endpoint or object it was.
A leaf module (standard library only), so every layer — media processes, integrations, pipeline — can use it.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

REDACTED = "[redacted]"
# A URL with a scheme, up to whitespace or a character that ends it in prose, JSON or a shell line.
_URL = re.compile(r"""\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>`]+""")
# Signed-URL parameters outside a URL (a query string logged alone, a header dump): their value goes.
_SIGNED_PARAMETER = re.compile(
    r"(?i)\b(X-Amz-[A-Za-z-]+|Signature|AWSAccessKeyId|Expires|Policy|Key-Pair-Id)"
    r"=[^&\s\"'<>`]+")


def redact_url(url: str) -> str:
    """``url`` as ``scheme://host[:port]/path``: its userinfo, query and fragment removed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # not a URL we can take apart: remove whatever looks signed
        return _redact_parameters(url.split("?", 1)[0])
    if not parts.scheme or not parts.netloc:
        return _redact_parameters(url.split("?", 1)[0])
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def redact_text(text: str) -> str:
    """``text`` with every URL in it redacted (:func:`redact_url`) and any signed-URL parameter's value removed."""
    return _redact_parameters(_URL.sub(_redact_match, text))


def _redact_match(match: re.Match[str]) -> str:
    url = match.group(0)
    kept = url.rstrip(".,;:!)]}")  # punctuation of the sentence around it, not part of the URL
    return redact_url(kept) + url[len(kept):]


def _redact_parameters(text: str) -> str:
    return _SIGNED_PARAMETER.sub(lambda match: f"{match.group(1)}={REDACTED}", text)
