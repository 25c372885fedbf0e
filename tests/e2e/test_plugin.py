"""The operator view against the running api-server with the plugin loaded: JSON API, SSE during a real
transcode, media for the player, retry, delete, permissions, and a headless Chromium walk through the pages."""

from __future__ import annotations

import http.client
import json
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.conftest import ARTIFACTS
from tests.e2e.pages import page_findings
from vodflow import layout
from vodflow.devtools.samples import SampleSpec, make_sample

pytestmark = pytest.mark.e2e
DAG = "transcode_video"
BROWSER_DIR = Path(__file__).resolve().parents[1] / "browser"


def upload(stack, path: Path, name: str) -> tuple[str, str]:
    key = f"uploads/plugin-{uuid.uuid4().hex[:8]}/{name}"
    stack.storage.client.upload_file(str(path), "vodflow", key)
    return key, f"s3://vodflow/{key}"


def get(stack, path: str, user: str = "admin", **kwargs: Any) -> requests.Response:
    client = stack.client if user == "admin" else stack.airflow.client(user)
    return requests.get(f"{stack.airflow.base_url}/vodflow{path}", timeout=30,
                        headers={"Authorization": f"Bearer {client.token()}"}, **kwargs)


def call(stack, method: str, path: str, user: str = "admin") -> requests.Response:
    client = stack.client if user == "admin" else stack.airflow.client(user)
    return requests.request(method, f"{stack.airflow.base_url}/vodflow{path}", timeout=30,
                            headers={"Authorization": f"Bearer {client.token()}"})


def get_as_written(stack, path: str) -> tuple[int, Any]:
    """GET ``/vodflow<path>`` byte for byte: requests (urllib3) would resolve ``..`` segments before sending."""
    base = urlsplit(stack.airflow.base_url)
    connection = http.client.HTTPConnection(base.hostname, base.port, timeout=30)
    try:
        connection.request("GET", f"/vodflow{path}", headers={"Authorization": f"Bearer {stack.client.token()}"})
        response = connection.getresponse()
        body = response.read()
        is_json = response.getheader("content-type", "").startswith("application/json")
        return response.status, json.loads(body) if is_json else body
    finally:
        connection.close()


def sse(stack, video_id: str, into: list[tuple[str, dict]], timeout: float = 300) -> None:
    """Read the SSE stream until it ends, appending (event, data)."""
    response = requests.get(f"{stack.airflow.base_url}/vodflow/api/videos/{video_id}/events", stream=True,
                            timeout=timeout, headers={"Authorization": f"Bearer {stack.client.token()}"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    event = "message"
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            into.append((event, json.loads(line[6:])))
            if event == "end":
                return


@pytest.fixture(scope="module")
def watched(embedded_stack, media) -> dict[str, Any]:
    """A real transcode followed over SSE from the moment it is triggered; delete refused while it runs."""
    stack = embedded_stack
    _, source = upload(stack, media["landscape"], "plugin.mp4")
    video_id = f"plug-{uuid.uuid4().hex[:8]}"
    title = "<script>alert(1)</script> & co"
    run_id = stack.client.trigger(DAG, {"source": source, "video_id": video_id, "title": title})
    events: list[tuple[str, dict]] = []
    # The stream starts once the run has registered the video.
    deadline = time.monotonic() + 120
    while get(stack, f"/api/videos/{video_id}").status_code == 404:
        assert time.monotonic() < deadline, "the run never registered its video"
        time.sleep(0.3)
    reader = threading.Thread(target=sse, args=(stack, video_id, events))
    reader.start()
    refused_delete = None
    while reader.is_alive():
        status = get(stack, f"/api/videos/{video_id}").json()["status"]
        if status == "transcoding" and refused_delete is None:
            refused_delete = call(stack, "DELETE", f"/api/videos/{video_id}")
        time.sleep(0.5)
    reader.join()
    stack.client.wait_for_run(DAG, run_id, timeout=300)
    return {"video_id": video_id, "run_id": run_id, "events": events, "refused_delete": refused_delete}


def test_sse_pushes_increasing_progress_then_ready(watched):
    snapshots = [data for event, data in watched["events"] if event == "video"]
    statuses = [s["status"] for s in snapshots]
    assert statuses[-1] == "ready" and "transcoding" in statuses
    progress = [s["progress"] for s in snapshots if s["status"] == "transcoding"]
    assert len(progress) >= 3, progress
    assert progress == sorted(progress) and progress[-1] > progress[0], progress
    assert any(0 < p < 100 for p in progress)
    history = [data["kind"] for event, data in watched["events"] if event == "history"]
    assert "planned" in history and "rendition" in history
    assert watched["events"][-1] == ("end", {"status": "ready"})


def test_video_api_describes_the_video_and_serves_its_media(embedded_stack, watched):
    stack, video_id = embedded_stack, watched["video_id"]
    video = get(stack, f"/api/videos/{video_id}").json()
    assert video["status"] == "ready" and video["progress"] == 100 and video["current_version"] == 1
    assert video["title"] == "<script>alert(1)</script> & co"
    assert [r["name"] for r in video["renditions"]] == ["1080p", "720p", "480p", "360p"]
    for r in video["renditions"]:
        assert r["status"] == "done" and r["codecs"].startswith("avc1.") and r["bandwidth"] > 0 and r["bytes"] > 0
    assert video["dag_run_id"] == watched["run_id"]
    assert {e["kind"] for e in video["events"]} >= {"status", "probed", "planned", "rendition"}
    master = get(stack, video["master_url"].removeprefix("/vodflow"))
    assert master.status_code == 200 and master.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert "#EXT-X-STREAM-INF" in master.text
    first_variant = next(line for line in master.text.splitlines() if line.endswith("index.m3u8"))
    base = video["master_url"].removeprefix("/vodflow").rsplit("/", 1)[0]
    playlist = get(stack, f"{base}/{first_variant}")
    segment = next(line for line in playlist.text.splitlines() if line.endswith(".ts"))
    ts = get(stack, f"{base}/{first_variant.rsplit('/', 1)[0]}/{segment}")
    assert ts.headers["content-type"] == "video/mp2t" and ts.content[:1] == b"\x47"
    # Out of the video's folder, sent as written. Something waits at the key a route without its path check
    # would read (the video's prefix + the path), so such a route would serve it; the refusal must be the media
    # route's own ("No such media."), not routing's "Not Found" for a path that never reached it.
    planted = layout.video_prefix(video_id) + "../../secrets"
    stack.storage.client.put_object(Bucket="vodflow", Key=planted, Body=b"not for players")
    try:  # the route's own read of that key would find it:
        assert stack.storage.client.get_object(Bucket="vodflow", Key=planted)["Body"].read() == b"not for players"
        for climbing in ("../../secrets", "%2e%2e/%2e%2e/secrets"):  # the second decodes to the first
            answer = get_as_written(stack, f"/api/videos/{video_id}/media/{climbing}")
            assert answer == (404, {"detail": "No such media."}), (climbing, answer)
    finally:
        stack.storage.client.delete_object(Bucket="vodflow", Key=planted)
    assert get(stack, f"/api/videos/{video_id}/media/v1/hls/x.txt").status_code == 404

    listing = get(stack, "/api/videos", params={"q": video_id[5:], "status": "ready"}).json()
    assert [v["id"] for v in listing["videos"]] == [video_id] and listing["total"] == 1
    assert get(stack, "/api/videos", params={"run_id": watched["run_id"]}).json()["videos"][0]["id"] == video_id
    page = get(stack, "/api/videos", params={"limit": 1, "offset": 0}).json()
    assert len(page["videos"]) == 1 and page["total"] >= 1
    assert get(stack, "/api/videos", params={"status": "bogus"}).status_code == 422
    stats = get(stack, "/api/stats").json()
    assert stats["by_status"]["ready"] >= 1 and stats["completed_today"] >= 1
    assert stats["average_processing_seconds"] > 0 and stats["queue_length"] >= 0 and stats["runs_waiting"] >= 0


def test_delete_is_refused_while_transcoding_then_removes_media_and_rows(embedded_stack, watched):
    stack, video_id = embedded_stack, watched["video_id"]
    assert watched["refused_delete"] is not None and watched["refused_delete"].status_code == 409
    assert call(stack, "DELETE", f"/api/videos/{video_id}", user="viewer").status_code == 403
    video = get(stack, f"/api/videos/{video_id}").json()
    source_key = layout.parse_source_uri(video["source_uri"]).key
    response = call(stack, "DELETE", f"/api/videos/{video_id}")
    assert response.status_code == 200 and response.json()["deleted_objects"] > 10
    assert stack.storage.list_keys(layout.video_prefix(video_id)) == []
    assert stack.catalog.get_video(video_id) is None
    assert get(stack, f"/api/videos/{video_id}").status_code == 404
    assert stack.storage.head(layout.parse_source_uri(video["source_uri"])).size > 0  # the upload stays
    assert source_key.startswith("uploads/")


def test_retry_reruns_a_failed_video_with_its_request_and_publishes_a_new_version(embedded_stack, tmp_path):
    stack = embedded_stack
    key = f"uploads/plugin-{uuid.uuid4().hex[:8]}/late.mp4"
    video_id = f"retry-{uuid.uuid4().hex[:8]}"
    # Not the defaults: on a 640x360 source the default ladder makes 360p only, this one 360p and 240p.
    request = {"source": f"s3://vodflow/{key}", "video_id": video_id, "ladder": ["360p", "240p"], "adaptive": True}
    run_id = stack.client.trigger(DAG, request)
    assert stack.client.wait_for_run(DAG, run_id, timeout=300)["state"] == "failed"
    assert stack.catalog.get_video(video_id)["error_code"] == "source_missing"

    def retry(body: dict[str, Any] | None = None, user: str = "admin") -> requests.Response:
        client = stack.client if user == "admin" else stack.airflow.client(user)
        return requests.post(f"{stack.airflow.base_url}/vodflow/api/videos/{video_id}/retry", json=body,
                             headers={"Authorization": f"Bearer {client.token()}"}, timeout=30)

    assert retry(user="viewer").status_code == 403
    assert retry({"title": "x"}, user="viewer").status_code == 403
    for body, field in (({"ladder": ["999p"]}, "ladder"), ({"chunk_seconds": -1}, "chunk_seconds"),
                        ({"bogus": 1}, "bogus"), ({"source": "s3://vodflow/uploads/other.mp4"}, "source"),
                        ({"video_id": "someone-else"}, "video_id")):
        refused = retry(body)
        assert refused.status_code == 400 and field in refused.json()["detail"], (body, refused.text)
    assert stack.catalog.get_video(video_id)["latest_version"] == 1  # nothing was started
    late = tmp_path / "late.mp4"
    make_sample(str(late), SampleSpec(640, 360, 2.0, "30", audio=True))
    stack.storage.client.upload_file(str(late), "vodflow", key)  # the upload arrives late
    response = retry({"title": "Second try"})
    assert response.status_code == 202, response.text
    retry_run = response.json()["dag_run_id"]
    # The first request with the priority its run got (kept, so a retry keeps it), the override on top.
    kept = {**request, "priority": "normal", "title": "Second try"}
    assert stack.client.run(DAG, retry_run)["conf"] == kept == response.json()["conf"]
    assert stack.client.wait_for_run(DAG, retry_run, timeout=300)["state"] == "success"
    video = stack.catalog.get_video(video_id)
    assert (video["status"], video["current_version"], video["error_code"]) == ("ready", 2, None)
    assert video["title"] == "Second try" and json.loads(video["request"]) == kept
    assert [r["name"] for r in stack.catalog.get_renditions(video_id, 2)] == ["360p", "240p"]
    assert any(e["kind"] == "ladder_decided" for e in stack.catalog.get_events(video_id))  # adaptive kept
    assert retry().status_code == 409  # ready: nothing to retry


def test_every_route_refuses_anonymous_callers(embedded_stack, watched):
    base = f"{embedded_stack.airflow.base_url}/vodflow"
    vid = watched["video_id"]
    routes = [("GET", "/api/videos"), ("GET", f"/api/videos/{vid}"), ("GET", f"/api/videos/{vid}/events"),
              ("GET", f"/api/videos/{vid}/media/v1/hls/master.m3u8"), ("POST", f"/api/videos/{vid}/retry"),
              ("DELETE", f"/api/videos/{vid}"), ("GET", "/api/stats"), ("POST", "/api/uploads"),
              ("GET", "/ui/videos"), ("GET", "/ui/video?id=x"), ("GET", "/static/hls.min.js"),
              ("GET", "/static/video.js")]
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Cookie": "_token=forged"}):
            status = requests.request(method, base + path, headers=headers, timeout=10).status_code
            assert status in (401, 403), (method, path, headers, status)
    assert get(embedded_stack, "/ui/videos", user="viewer").status_code == 200
    assert get(embedded_stack, "/ui/videos").headers["content-security-policy"].startswith("default-src 'self'")


def test_an_operator_follows_a_video_in_the_airflow_ui(embedded_stack, media):
    stack = embedded_stack
    _, source = upload(stack, media["small"], "browser.mp4")
    video_id = f"ui-{uuid.uuid4().hex[:8]}"
    title = "<img src=x onerror=alert(1)>"
    run_id = stack.client.trigger(DAG, {"source": source, "video_id": video_id, "title": title})
    assert stack.client.wait_for_run(DAG, run_id, timeout=300)["state"] == "success"
    shots = ARTIFACTS / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    command = ["node", str(BROWSER_DIR / "videos.mjs"), stack.airflow.base_url, "admin", "admin", video_id, run_id,
               str(shots)]
    result = subprocess.run(command, cwd=BROWSER_DIR, capture_output=True, text=True, timeout=180,  # noqa: S603
                            check=False)
    findings = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else {}
    assert "error" not in findings and result.returncode == 0, (findings, result.stderr[-2000:])
    assert findings["list_status"] == "ready"
    assert findings["list_bars"] >= 1 and set(findings["list_bar_values"]) == {100}
    assert findings["list_title"] == "<img src=x onerror=alert(1)>"  # shown as text, never run
    assert findings["detail_renditions"] >= 1 and findings["history_rows"] >= 3
    assert findings["playback"]["t"] > 1.0 and findings["playback"]["w"] > 0, findings
    assert findings["run_tab_title"] == title
    assert findings["dialogs"] == []
    for shot in ("videos-list.png", "video-page.png", "run-tab.png"):
        assert (shots / shot).stat().st_size > 10_000


def test_a_video_refused_for_bad_input_shows_its_reason_not_a_retry_or_a_player(embedded_stack, media):
    """not_a_video can never succeed: no Retry (the API refuses one too, with the reason), no empty player, no
    "size unknown · version – published": the page says it is not published, and why."""
    stack = embedded_stack
    _, source = upload(stack, media.bad("text.mp4"), "notes.mp4")
    video_id = f"refused-{uuid.uuid4().hex[:8]}"
    run_id = stack.client.trigger(DAG, {"source": source, "video_id": video_id})
    assert stack.client.wait_for_run(DAG, run_id, timeout=300)["state"] == "failed"
    video = get(stack, f"/api/videos/{video_id}").json()
    assert (video["status"], video["error_code"], video["current_version"]) == ("failed", "not_a_video", None)
    assert "not_a_video" in video["retry_refusal"]
    refused = requests.post(f"{stack.airflow.base_url}/vodflow/api/videos/{video_id}/retry", timeout=30,
                            headers={"Authorization": f"Bearer {stack.client.token()}"})
    assert refused.status_code == 409 and "Retrying cannot help" in refused.json()["detail"], refused.text
    retries = stack.client.request("GET", f"/api/v2/dags/{DAG}/dagRuns",
                                   params={"run_id_pattern": f"retry__{video_id}"})
    assert retries["total_entries"] == 0, "no retry run was started"

    page = page_findings(stack, "refused.mjs", video_id)
    assert page["retry_visible"] is False and "not_a_video" in page["retry_note"], page
    assert page["player_visible"] is False and page["player_note"] == "Not published.", page
    assert "not published" in page["summary"], page
    assert "size unknown" not in page["summary"] and "version –" not in page["summary"], page
    assert page["error_text"].startswith("not_a_video: "), page
    assert page["source"] == f"Source {source}", page


HOSTILE = "<img src=x onerror=window.__pwned=1> \"quoted\" & 'single', comma"


def hostile_sample(path: Path) -> Path:
    """6 s, two audio tracks and a subtitle track whose titles are markup with quotes, ampersand and comma."""
    subs = path.with_suffix(".srt")
    subs.write_text("1\n00:00:01,000 --> 00:00:02,000\nHello\n", encoding="utf-8")
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",  # noqa: S603
                    "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                    "-f", "lavfi", "-i", "sine=frequency=880:sample_rate=48000", "-i", str(subs),
                    "-map", "0:v", "-map", "1:a", "-map", "2:a", "-map", "3:s", "-t", "6",
                    "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-ac", "2", "-c:s", "srt",
                    "-metadata:s:a:0", "language=eng", "-metadata:s:a:0", f"title=Main {HOSTILE}",
                    "-metadata:s:a:1", "language=fra", "-metadata:s:a:1", f"title=Dub {HOSTILE}",
                    "-metadata:s:s:0", "language=eng", "-metadata:s:s:0", f"title=Subs {HOSTILE}",
                    str(path)], check=True)
    return path


def test_hostile_titles_and_names_show_as_text_and_run_nothing(embedded_stack, tmp_path):
    """Title, file name and track titles from the upload with markup and quotes: on the video page and in the list
    each shows exactly as the API holds it; no dialog, no injected element (nothing fetched for <img src=x>)."""
    stack = embedded_stack
    key, source = upload(stack, hostile_sample(tmp_path / "hostile.mkv"), f"{HOSTILE}.mkv")
    video_id = f"hostile-{uuid.uuid4().hex[:8]}"
    title = f"\"><script>window.__pwned=2</script>{HOSTILE}"
    run_id = stack.client.trigger(DAG, {"source": source, "video_id": video_id, "title": title, "ladder": ["240p"]})
    assert stack.client.wait_for_run(DAG, run_id, timeout=300)["state"] == "success"
    video = get(stack, f"/api/videos/{video_id}").json()
    assert video["title"] == title and video["source_uri"] == source and key.endswith(f"{HOSTILE}.mkv")
    names = [t["name"] for e in video["events"] if e["kind"] in ("audio_tracks", "subtitles")
             for t in e["detail"]["tracks"]]
    assert len(names) == 3 and all("<img src=x" in name for name in names), names

    page = page_findings(stack, "hostile.mjs", video_id)
    assert page["dialogs"] == [] and page["injected_requests"] == [] and page["csp"] == [], page
    assert page["video_page"] == {"pwned": 0, "elements": 0} and page["list_page"] == {"pwned": 0, "elements": 0}
    assert page["title"] == title and page["list_title"] == title and page["document_title"] == f"{title} · vodflow"
    assert page["source"] == source
    for name in names:  # the history shows each track's title as it is: quotes as quotes, markup as text
        assert name in page["history"], (name, page["history"])
