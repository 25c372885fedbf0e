"""Early playback of a chunked run through the real stack and a real browser: a 90 s source in 30 s chunks is
played in hls.js from its early master while the run is still transcoding, from 0 to its end, with no stall and
no repeated or missing second; the run then ends ready.

The source is small (240p, 15 fps, one rendition) so that its chunks are encoded faster than they are played even
on a loaded 2-core machine: a player that starts at the first segment of a run encoding slower than real time
catches up with the encode and waits, as at any live edge (a 360p/240p ladder at 30 fps stalled so here, with the
machine's load at 19). What this test is about is the tree: in order, complete, growing in time."""

from __future__ import annotations

import itertools
import json
import subprocess
import uuid

import pytest

from tests.conftest import ARTIFACTS
from tests.e2e.pages import BROWSER_DIR
from vodflow.devtools.samples import SampleSpec, make_sample

pytestmark = pytest.mark.e2e
DAG = "transcode_video"
DURATION = 90.0
SEGMENTS = 15  # 90 s on the 6 s grid


def test_a_chunked_run_plays_from_its_early_tree_while_it_is_encoded(embedded_stack, tmp_path):
    stack = embedded_stack
    path = make_sample(str(tmp_path / "long.mp4"), SampleSpec(426, 240, DURATION, "15", audio=True))
    key = f"uploads/e2e-{uuid.uuid4().hex[:8]}/long.mp4"
    stack.storage.client.upload_file(path, "vodflow", key)
    run_id = f"early-chunks-{uuid.uuid4().hex[:8]}"
    shots = ARTIFACTS / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    browser = subprocess.Popen(["node", str(BROWSER_DIR / "earlychunks.mjs"), stack.airflow.base_url,  # noqa: S603
                                "admin", "admin", run_id, str(shots)], cwd=BROWSER_DIR, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        stack.client.trigger(DAG, {"source": f"s3://vodflow/{key}", "chunk_seconds": 30,
                                   "ladder": ["240p"]}, run_id=run_id, attempts=4)
        out, err = browser.communicate(timeout=600)
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
    for sample in samples:
        if not sample["ended"]:
            drift = (sample["t"] - first["t"]) - (sample["wall"] - first["wall"]) / 1000
            assert abs(drift) < 1.0, (sample, first)
    # Every segment of the video and of the audio fetched, in order of the timeline.
    main = [f for f in findings["frags"] if f["type"] == "main"]
    audio = [f for f in findings["frags"] if f["type"] == "audio"]
    assert sorted({f["sn"] for f in main}) == list(range(SEGMENTS))
    assert sorted({f["sn"] for f in audio}) == list(range(SEGMENTS))
    assert [f["sn"] for f in audio] == sorted(f["sn"] for f in audio)
    assert all(f["url"].startswith("240p/seg_") for f in main)
    assert all(f["url"].startswith("audio/seg_") for f in audio)
