"""A presigned-URL-checking front for the local S3 server, for tests.

moto's server accepts presigned URLs without checking them. AWS and MinIO check the SigV4 query signature and
the expiry; this gateway does the same, independently of botocore (its own SigV4 implementation from AWS's
specification), and forwards what passes to moto. Requests authenticated by header (the SDK's own calls) are
forwarded unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote, urlsplit

import requests


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _canonical_query(raw_query: str) -> tuple[str, dict[str, str]]:
    pairs = []
    for item in raw_query.split("&") if raw_query else []:
        name, _, value = item.partition("=")
        pairs.append((unquote(name), unquote(value)))
    params = dict(pairs)
    canonical = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
                         for k, v in sorted(pairs) if k != "X-Amz-Signature")
    return canonical, params


def check_presigned(method: str, raw_path: str, headers: dict[str, str], secrets: dict[str, str],
                    now: datetime | None = None) -> str | None:
    """None if the presigned request is valid, else the S3 error code that refuses it."""
    split = urlsplit(raw_path)
    canonical_query, params = _canonical_query(split.query)
    try:
        access_key, date, region, service, _ = params["X-Amz-Credential"].split("/")
        stamp = datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        expires = int(params["X-Amz-Expires"])
        signed_headers = params["X-Amz-SignedHeaders"].split(";")
    except (KeyError, ValueError):
        return "AuthorizationQueryParametersError"
    if access_key not in secrets:
        return "InvalidAccessKeyId"
    if (now or datetime.now(UTC)) > stamp + timedelta(seconds=expires):
        return "AccessDenied"  # "Request has expired"
    lowered = {k.lower(): " ".join(v.split()) for k, v in headers.items()}
    if any(h not in lowered for h in signed_headers):
        return "SignatureDoesNotMatch"
    canonical_headers = "".join(f"{h}:{lowered[h]}\n" for h in signed_headers)
    canonical_request = "\n".join([method, split.path, canonical_query, canonical_headers,
                                   ";".join(signed_headers), "UNSIGNED-PAYLOAD"])
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(["AWS4-HMAC-SHA256", params["X-Amz-Date"], scope,
                                hashlib.sha256(canonical_request.encode()).hexdigest()])
    expected = hmac.new(_signing_key(secrets[access_key], date, region, service), string_to_sign.encode(),
                        hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, params.get("X-Amz-Signature", "")):
        return "SignatureDoesNotMatch"
    return None


class PresignCheckingGateway:
    def __init__(self, upstream: str, secrets: dict[str, str]) -> None:
        self.upstream = upstream.rstrip("/")
        self.secrets = secrets
        self.refusals: list[str] = []
        self.requests: list[str] = []  # "METHOD path?query" of every request, for tests that count calls
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                gateway.requests.append(f"{self.command} {self.path}")
                if "X-Amz-Signature=" in self.path:
                    error = check_presigned(self.command, self.path, dict(self.headers), gateway.secrets)
                    if error:
                        gateway.refusals.append(error)
                        payload = f"<Error><Code>{error}</Code></Error>".encode()
                        self.send_response(403)
                        self.send_header("Content-Type", "application/xml")
                        self.send_header("Content-Length", str(len(payload)))
                        self.end_headers()
                        self.wfile.write(payload)
                        return
                upstream_headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                response = requests.request(self.command, gateway.upstream + self.path, data=body,
                                            headers=upstream_headers, timeout=60)
                self.send_response(response.status_code)
                head = self.command == "HEAD"
                for key, value in response.headers.items():
                    if key.lower() not in ("transfer-encoding", "connection") and (
                            head or key.lower() != "content-length"):
                        self.send_header(key, value)
                if not head:
                    self.send_header("Content-Length", str(len(response.content)))
                self.end_headers()
                if not head:
                    self.wfile.write(response.content)

            do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _handle

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> PresignCheckingGateway:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
