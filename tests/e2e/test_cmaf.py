"""A run with the cmaf output through the real Airflow stack: Airflow's REST trigger, the mapped transcode (the
remux on the encode's machine), publish, the plugin's video API and media route, and the video page's player,
which plays the DASH manifest with the bundled dash.js."""

from __future__ import annotations

import uuid

import m3u8
import pytest
import requests

from tests.e2e.pages import page_findings
from vodflow import layout
from vodflow.media import dash

pytestmark = pytest.mark.e2e
DAG = "transcode_video"


def _get(stack, path: str, **params: str) -> requests.Response:
    return requests.get(f"{stack.airflow.base_url}/vodflow{path.removeprefix('/vodflow')}", timeout=30,
                        params=params, headers={"Authorization": f"Bearer {stack.client.token()}"})


def test_a_cmaf_run_publishes_dash_and_fmp4_hls_and_the_page_plays_dash(embedded_stack, media):
    stack = embedded_stack
    key = f"uploads/e2e-{uuid.uuid4().hex[:8]}/cmaf.mp4"
    stack.storage.client.upload_file(str(media["landscape"]), "vodflow", key)
    run_id = stack.client.trigger(DAG, {"source": f"s3://vodflow/{key}", "ladder": ["720p", "360p"],
                                        "outputs": ["hls", "cmaf"]})
    assert stack.client.wait_for_run(DAG, run_id, timeout=600)["state"] == "success"
    video_id = _get(stack, "/api/videos", run_id=run_id).json()["videos"][0]["id"]
    video = _get(stack, f"/api/videos/{video_id}").json()
    assert video["status"] == "ready" and video["dash_url"].endswith("/v1/cmaf/manifest.mpd")
    mpd = _get(stack, video["dash_url"])
    assert mpd.status_code == 200 and mpd.headers["content-type"].startswith("application/dash+xml")
    reps = [r.id for a in dash.parse_mpd(mpd.text).periods[0].adaptation_sets for r in a.representations]
    assert reps == ["360p", "720p", "aac-96k", "aac-128k"]
    master_url = video["dash_url"].replace("manifest.mpd", "master.m3u8")
    master = m3u8.loads(_get(stack, master_url).text)
    assert [p.uri for p in master.playlists][-1] == "aac-96k/index.m3u8"  # the audio-only variant
    segment = _get(stack, master_url.replace("master.m3u8", "720p/seg_00000.m4s"))
    assert segment.status_code == 200 and segment.headers["content-type"] == "video/iso.segment"
    cost = next(e for e in video["events"] if e["kind"] == "outputs")
    assert set(cost["detail"]["cost"]) == {"cmaf"}

    findings = page_findings(stack, "cmafpage.mjs", video_id)
    assert findings["dash"] and "DASH" in findings["note"] and findings["playing"]["err"] is None
    assert "manifest.mpd" in findings["requests"] and any(r.endswith(".m4s") for r in findings["requests"])
    assert any(r.startswith("aac-") for r in findings["requests"]), findings  # the audio set played too

    deleted = requests.delete(f"{stack.airflow.base_url}/vodflow/api/videos/{video_id}", timeout=30,
                              headers={"Authorization": f"Bearer {stack.client.token()}"})
    assert deleted.status_code == 200
    assert stack.storage.list_keys(layout.video_prefix(video_id)) == []  # the CMAF tree went too
