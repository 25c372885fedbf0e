"""Early playback of a chunked run through the real stack and a real browser: a 90 s source in 30 s chunks is
played in hls.js from its early master while the run is still transcoding, from 0 to its end, with no stall and
no repeated or missing second; the run then ends ready.

What this is about is the tree: in order, complete, growing in time. So the source is small (240p, 15 fps, one
rendition), encoded faster than it is played even on a loaded 2-core machine (a player that starts at the first
segment of an encode slower than real time catches up with it and waits, as at any live edge: a 360p/240p ladder
at 30 fps stalled so with the machine's load at 19), and the player gets the objects from the bucket through a
small server of this test's, not through the api-server's media route (tested in test_media_route), whose answers
on that machine came later than hls.js waits for a fragment (fragLoadTimeOut, then stalls)."""

from __future__ import annotations

import itertools
import json
import subprocess
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import ARTIFACTS
from tests.e2e.pages import BROWSER_DIR, longest_still
from vodflow.devtools.samples import SampleSpec, make_sample

pytestmark = pytest.mark.e2e
DAG = "transcode_video"
DURATION = 90.0
SEGMENTS = 15  # 90 s on the 6 s grid


@pytest.fixture
def direct(embedded_stack) -> Iterator[str]:
    """An HTTP server answering ``GET /videos/...`` with that object of the bucket (read with the stack's
    credentials): the player's media without the api-server in between."""
    client = embedded_stack.storage.client

    class Objects(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            key = self.path.split("?", 1)[0].lstrip("/")
            try:
                found = client.get_object(Bucket="vodflow", Key=key) if key.startswith("videos/") else None
            except client.exceptions.NoSuchKey:
                found = None
            if found is None:
                self.send_error(404)
                return
            body = found["Body"].read()
            self.send_response(200)
            self.send_header("Content-Type", found["ContentType"])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Objects)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join()


def test_a_chunked_run_plays_from_its_early_tree_while_it_is_encoded(embedded_stack, direct, tmp_path):
    stack = embedded_stack
    path = make_sample(str(tmp_path / "long.mp4"), SampleSpec(426, 240, DURATION, "15", audio=True))
    key = f"uploads/e2e-{uuid.uuid4().hex[:8]}/long.mp4"
    stack.storage.client.upload_file(path, "vodflow", key)
    run_id = f"early-chunks-{uuid.uuid4().hex[:8]}"
    shots = ARTIFACTS / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    command = ["node", str(BROWSER_DIR / "earlychunks.mjs"), stack.airflow.base_url, "admin", "admin", run_id,
               str(shots), direct]
    browser = subprocess.Popen(command, cwd=BROWSER_DIR, stdout=subprocess.PIPE,  # noqa: S603
                               stderr=subprocess.PIPE, text=True)
    try:
        stack.client.trigger(DAG, {"source": f"s3://vodflow/{key}", "chunk_seconds": 30,
                                   "ladder": ["240p"]}, run_id=run_id, attempts=4)
        out, err = browser.communicate(timeout=1200)
    finally:
        if browser.poll() is None:
            browser.kill()
    findings = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    (ARTIFACTS / "early-chunks.json").write_text(json.dumps(findings, indent=1))
    assert "error" not in findings and browser.returncode == 0, (findings.get("error"), err[-2000:])
    run = stack.client.wait_for_run(DAG, run_id, timeout=600)
    assert run["state"] == "success"
    video = stack.catalog.get_video(findings["started"]["id"])
    assert video["status"] == "ready" and video["current_version"] == 1

    # Playback started on the early tree while the run was encoding.
    assert "/v1/early/master.m3u8" in findings["started"]["playable_url"]
    assert findings["started"]["status"] == "transcoding" and findings["status_when_playing"] == "transcoding"
    assert not [e for e in findings["errors"] if e["fatal"]]
    # To the end: every second once, at wall-clock pace (a stall or a skip shows as drift, a repeat as going back).
    samples = findings["samples"]
    assert findings["end"]["ended"] and findings["end"]["t"] == pytest.approx(DURATION, abs=0.5)
    assert not findings["waiting"], findings["waiting"]
    first = samples[0]
    for a, b in itertools.pairwise(samples):
        assert b["t"] >= a["t"]  # never back
    # A stall: the picture still for over a second (samples are 250 ms apart).
    longest = longest_still((s["wall"], s["t"]) for s in samples if not s["ended"])
    assert longest <= 1.0, f"stalled for {longest:.2f} s"
    for sample in samples:
        if not sample["ended"]:
            elapsed = (sample["wall"] - first["wall"]) / 1000
            drift = (sample["t"] - first["t"]) - elapsed
            # Ahead of the wall clock by a second: a second skipped. Behind it: what the unchunked test allows
            # (2.5 s) and 3 % of the time played: a starved headless Chromium's media clock runs that much slower
            # than the wall clock, smoothly, with no still picture and no `waiting` (seen in make test: 3.4 %).
            assert -(2.5 + 0.03 * elapsed) < drift < 1.0, (sample, first)
    # Every segment of the video and of the audio fetched, in order of the timeline.
    main = [f for f in findings["frags"] if f["type"] == "main"]
    audio = [f for f in findings["frags"] if f["type"] == "audio"]
    early_segments = SEGMENTS + 2  # the first 6 s in three 2 s lead-in pieces
    assert sorted({f["sn"] for f in main}) == list(range(early_segments))
    assert sorted({f["sn"] for f in audio}) == list(range(early_segments))
    assert [f["sn"] for f in audio] == sorted(f["sn"] for f in audio)
    assert all(f["url"].startswith("240p/seg_") for f in main)
    assert all(f["url"].startswith("audio/seg_") for f in audio)
