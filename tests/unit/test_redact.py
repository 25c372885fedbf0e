"""The one redaction of secrets in URLs: what logs, the catalog and events may hold of a URL or a message."""

from __future__ import annotations

import pytest

from vodflow.redact import redact_text, redact_url


@pytest.mark.parametrize(("url", "shown"), [
    ("https://app.example.net/hooks/v?token=abc&sig=def", "https://app.example.net/hooks/v"),
    ("https://user:pass@app.example.net:8443/h#frag", "https://app.example.net:8443/h"),
    ("http://[::1]:9000/x?y=1", "http://[::1]:9000/x"),
    ("http://127.0.0.1:5000/vodflow/uploads/a.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=0123abcd",
     "http://127.0.0.1:5000/vodflow/uploads/a.mp4"),
    ("s3://vodflow/uploads/a b.mp4", "s3://vodflow/uploads/a b.mp4"),
])
def test_a_url_keeps_only_scheme_host_and_path(url, shown):
    assert redact_url(url) == shown


def test_text_loses_every_urls_query_and_any_signature():
    text = ("ffmpeg -i 'https://s3.example.com/b/k.mp4?X-Amz-Credential=AKIA%2F&X-Amz-Signature=deadbeef' -f null -\n"
            "error: Signature=c2lnbmF0dXJl&Expires=1 at https://hooks.example.net/h?token=t0ken, "
            "X-Amz-Signature=feedface")
    out = redact_text(text)
    for secret in ("deadbeef", "AKIA", "c2lnbmF0dXJl", "t0ken", "feedface"):
        assert secret not in out
    assert "https://s3.example.com/b/k.mp4" in out and "https://hooks.example.net/h," in out
    assert redact_text("nothing secret here: 1080p ready") == "nothing secret here: 1080p ready"
