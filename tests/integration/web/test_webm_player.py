"""A WebM download (AV1 + Opus, made by the real encoder from the pipeline's own H.264 rendition) in a plain
``<video>`` of headless Chromium (Debian's), served over HTTP with byte ranges as S3 and a CDN serve it: the browser
says it can play the type with the file's exact codecs, plays it, reports its duration to a frame, and seeks."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from fractions import Fraction
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from tests.integration.media.webmfiles import FPS, encoded_webm, sync_rendition

pytestmark = [pytest.mark.integration, pytest.mark.skipif(
    not (Path(__file__).resolve().parents[2] / "browser" / "node_modules" / "playwright-core").exists()
    or not shutil.which("chromium"), reason="needs `make browser` (playwright-core) and Debian's chromium")]
BROWSER_DIR = Path(__file__).resolve().parents[2] / "browser"
RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


class RangeHandler(SimpleHTTPRequestHandler):
    """Static files with single byte ranges (206), as S3 serves them: what a browser seeks a download with."""

    extensions_map: ClassVar[dict[str, str]] = {**SimpleHTTPRequestHandler.extensions_map, ".webm": "video/webm"}

    def send_head(self):
        match = RANGE.match(self.headers.get("Range", ""))
        path = self.translate_path(self.path)
        if not match or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        start, end = int(match.group(1)), min(int(match.group(2) or size - 1), size - 1)
        f = open(path, "rb")  # noqa: SIM115 - closed by copyfile's caller
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.range_left = end - start + 1
        return f

    def copyfile(self, source, outputfile):
        left = getattr(self, "range_left", None)
        if left is None:
            return super().copyfile(source, outputfile)
        outputfile.write(source.read(left))
        return None

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("webm-player")
    made = sync_rendition(root)
    facts = encoded_webm(made, root / "360p.webm")
    (root / "index.html").write_text('<!doctype html><meta charset="utf-8"><title>webm</title>')
    server = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: RangeHandler(*a, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", made, facts
    server.shutdown()


def test_chromium_plays_the_webm_download_in_a_plain_video_element(served):
    base, made, facts = served
    result = subprocess.run(["node", str(BROWSER_DIR / "webm.mjs"), f"{base}/index.html",  # noqa: S603
                             f"{base}/360p.webm", facts.codecs.replace(",", ", ")],
                            cwd=BROWSER_DIR, capture_output=True, text=True, timeout=180, check=False)
    findings = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else {}
    assert "error" not in findings and result.returncode == 0, (findings, result.stderr[-2000:])
    assert findings["can_play"] == "probably", (facts.codecs, findings)
    playing = findings["playing"]
    assert playing["err"] is None and playing["t"] > findings["started"] + 1.0, findings
    assert (playing["w"], playing["h"]) == (made.rendition.width, made.rendition.height)
    assert abs(playing["duration"] - made.measured.duration) <= float(1 / Fraction(FPS)), playing
    after = findings["after_seek"]
    assert abs(findings["seeked_at"] - 3.5) < 0.1 and after["err"] is None and after["t"] > 3.8, findings
