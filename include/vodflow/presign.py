"""Presigned UploadPart URLs by the thousand: SigV4 query signing of an upload's parts from one URL botocore
presigned (AWS, "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)")."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import unquote


@dataclass(frozen=True)
class PartUrlTemplate:
    """A SigV4 presigned UploadPart URL taken apart, to sign the same upload's other parts: the same date,
    expiry, key and credentials; only ``partNumber`` and the signed Content-Length change (AWS's "Authenticating
    Requests: Using Query Parameters"). A few microseconds a part."""

    base: str  # scheme://host/path? as botocore wrote it
    path: str
    host: str
    pairs: tuple[tuple[str, str], ...]  # the query's encoded pairs in botocore's order, without the signature
    amz_date: str
    scope: str
    signing_key: bytes

    @classmethod
    def parse(cls, url: str, credentials: object | None) -> PartUrlTemplate | None:
        """None unless ``url`` is a SigV4 query-signed URL with exactly Content-Length and Host signed."""
        from botocore.auth import _host_from_url
        from botocore.compat import urlsplit

        base, _, query = url.partition("?")
        pairs = [tuple(item.partition("=")[::2]) for item in query.split("&")]
        params = dict(pairs)
        secret = getattr(credentials, "secret_key", None)
        if not secret or params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" or "partNumber" not in params or \
                params.get("X-Amz-SignedHeaders") != "content-length%3Bhost" or "X-Amz-Signature" not in params:
            return None
        scope = unquote(params.get("X-Amz-Credential", "")).split("/")
        if len(scope) != 5 or scope[0] != getattr(credentials, "access_key", None) or scope[4] != "aws4_request":
            return None
        _, date, region, service, _ = scope
        key = f"AWS4{secret}".encode()
        for part in (date, region, service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        return cls(base=f"{base}?", path=urlsplit(url).path, host=_host_from_url(url),
                   pairs=tuple((k, v) for k, v in pairs if k != "X-Amz-Signature"), amz_date=params["X-Amz-Date"],
                   scope=f"{date}/{region}/{service}/aws4_request", signing_key=key)

    def url(self, part_number: int, content_length: int) -> str:
        pairs = [(k, str(part_number) if k == "partNumber" else v) for k, v in self.pairs]
        canonical = "\n".join(["PUT", self.path, "&".join(f"{k}={v}" for k, v in sorted(pairs)),
                               f"content-length:{content_length}\nhost:{self.host}\n", "content-length;host",
                               "UNSIGNED-PAYLOAD"])
        to_sign = "\n".join(["AWS4-HMAC-SHA256", self.amz_date, self.scope,
                             hashlib.sha256(canonical.encode()).hexdigest()])
        signature = hmac.new(self.signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
        return self.base + "&".join(f"{k}={v}" for k, v in pairs) + f"&X-Amz-Signature={signature}"


def frozen_credentials(client: object) -> object | None:
    """The credentials a botocore client signs with (None if it has none or keeps them elsewhere)."""
    credentials = getattr(getattr(client, "_request_signer", None), "_credentials", None)
    return credentials.get_frozen_credentials() if credentials is not None else None
