"""One run with every output (TS HLS, CMAF fMP4 HLS + DASH, MP4, M4A/MP3, storyboard) through the real Airflow
stack: Airflow's REST trigger, the mapped transcode (outputs made on the encode's machine), publish, the plugin's
video API and media route, and the video page in Chromium: downloads, storyboard previews, the MP4 playing, and the
player playing the DASH manifest with the bundled dash.js."""

from __future__ import annotations

import uuid

import m3u8
import pytest
import requests

from tests.e2e.pages import page_findings
from vodflow import layout
from vodflow.media.package import dash

pytestmark = pytest.mark.e2e
DAG = "transcode_video"


def _get(stack, path: str, **params: str) -> requests.Response:
    return requests.get(f"{stack.airflow.base_url}/vodflow{path}", timeout=30, params=params,
                        headers={"Authorization": f"Bearer {stack.client.token()}"})


def _browser(stack, video_id: str) -> dict:
    return page_findings(stack, "outputs.mjs", video_id)


def test_a_run_with_every_output_publishes_them_and_the_api_lists_them(embedded_stack, media):
    stack = embedded_stack
    key = f"uploads/e2e-{uuid.uuid4().hex[:8]}/holiday.mp4"
    stack.storage.client.upload_file(str(media["landscape"]), "vodflow", key)
    run_id = stack.client.trigger(DAG, {"source": f"s3://vodflow/{key}", "title": "Holiday: day 1",
                                        "ladder": ["720p", "360p"],
                                        "outputs": ["hls", "cmaf", "mp4", "audio", "storyboard"]})
    assert stack.client.wait_for_run(DAG, run_id, timeout=600)["state"] == "success"
    video_id = _get(stack, "/api/videos", run_id=run_id).json()["videos"][0]["id"]
    video = _get(stack, f"/api/videos/{video_id}").json()
    assert video["status"] == "ready"
    downloads = {(d["kind"], d["name"]): d for d in video["downloads"]}
    assert list(downloads) == [("mp4", "720p"), ("audio", "m4a"), ("audio", "mp3")]  # the top rendition only
    assert video["storyboard_url"].endswith("/v1/storyboard/storyboard.vtt")
    assert video["dash_url"].endswith("/v1/cmaf/manifest.mpd")
    assert {o["kind"] for o in video["outputs"]} == {"hls", "cmaf", "mp4", "audio", "storyboard"}

    mp4 = _get(stack, downloads[("mp4", "720p")]["url"].removeprefix("/vodflow"))
    assert mp4.status_code == 200 and mp4.headers["content-type"] == "video/mp4"
    assert len(mp4.content) == downloads[("mp4", "720p")]["bytes"]
    assert mp4.headers["content-disposition"].startswith('attachment; filename="Holiday_ day 1 (720p).mp4"')
    mp3 = _get(stack, downloads[("audio", "mp3")]["url"].removeprefix("/vodflow"))
    assert mp3.headers["content-type"] == "audio/mpeg" and mp3.content[:3] == b"ID3"
    vtt = _get(stack, video["storyboard_url"].removeprefix("/vodflow"))
    assert vtt.status_code == 200 and vtt.text.startswith("WEBVTT") and "#xywh=" in vtt.text
    cost = next(e for e in video["events"] if e["kind"] == "outputs")
    assert set(cost["detail"]["cost"]) == {"cmaf", "mp4", "audio", "storyboard"}

    mpd = _get(stack, video["dash_url"].removeprefix("/vodflow"))
    assert mpd.status_code == 200 and mpd.headers["content-type"].startswith("application/dash+xml")
    reps = [r.id for a in dash.parse_mpd(mpd.text).periods[0].adaptation_sets for r in a.representations]
    assert reps == ["360p", "720p", "aac-96k", "aac-128k"]
    master_url = video["dash_url"].removeprefix("/vodflow").replace("manifest.mpd", "master.m3u8")
    master = m3u8.loads(_get(stack, master_url).text)
    assert [p.uri for p in master.playlists][-1] == "aac-96k/index.m3u8"  # the audio-only variant
    segment = _get(stack, master_url.replace("master.m3u8", "720p/seg_00000.m4s"))
    assert segment.status_code == 200 and segment.headers["content-type"] == "video/iso.segment"

    findings = _browser(stack, video_id)
    assert findings["list_poster"] > 0, findings  # the list shows the poster
    assert [d.split(" ")[0] for d in findings["downloads"]] == ["MP4", "M4A", "MP3"], findings
    assert findings["downloads"][0].startswith("MP4 720p ") and " MB" in findings["downloads"][0]
    early, late = findings["previews"]
    assert early["time"] < late["time"] and early["position"] != late["position"], findings
    assert early["width"] == 160 and early["loaded"] > 0 and early["label"]
    assert findings["mp4"]["t"] > 0.5 and findings["mp4"]["w"] == 1280 and not findings["mp4"]["err"], findings
    played = page_findings(stack, "cmafpage.mjs", video_id)  # the page's player takes DASH when there is one
    assert played["dash"] and "DASH" in played["note"] and played["playing"]["err"] is None
    assert "manifest.mpd" in played["requests"] and any(r.endswith(".m4s") for r in played["requests"])
    assert any(r.startswith("aac-") for r in played["requests"]), played  # the audio set played too

    prefix = layout.version_prefix(video_id, 1)
    assert stack.storage.list_keys(f"{prefix}mp4/") == [f"{prefix}mp4/720p.mp4"]
    assert stack.storage.list_keys(f"{prefix}audio/") == [f"{prefix}audio/Holiday-day-1.m4a",
                                                        f"{prefix}audio/Holiday-day-1.mp3"]
    assert stack.storage.list_keys(f"{prefix}storyboard/")
    assert _get(stack, "/api/videos/" + video_id).status_code == 200
    deleted = requests.delete(f"{stack.airflow.base_url}/vodflow/api/videos/{video_id}", timeout=30,
                              headers={"Authorization": f"Bearer {stack.client.token()}"})
    assert deleted.status_code == 200
    assert stack.storage.list_keys(layout.video_prefix(video_id)) == []  # downloads, storyboard, CMAF went too
