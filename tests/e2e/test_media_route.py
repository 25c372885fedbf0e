"""The API's media route in the running api-server (the default config: no public base URL, so players fetch
everything through it): a large download streamed with little memory, byte ranges, and a video with alternate
audio and subtitles played by hls.js in Chromium through it."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import subprocess
import threading
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest
import requests

from tests.conftest import ARTIFACTS
from vodflow import layout
from vodflow.devtools.samples import SAMPLE_SRT, make_two_language_sample

pytestmark = pytest.mark.e2e
DAG = "transcode_video"
BROWSER_DIR = Path(__file__).resolve().parents[1] / "browser"
MiB = 1024 * 1024


def media_url(stack, video_id: str, path: str) -> str:
    return f"{stack.airflow.base_url}/vodflow/api/videos/{video_id}/media/{path}"


def auth(stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.client.token()}"}


def api_server_rss(stack) -> int:
    """Resident memory of the api-server: its process and every process under it (uvicorn's worker)."""
    root = psutil.Process(stack.airflow.processes["api-server"].proc.pid)
    total = 0
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += process.memory_info().rss
    return total


@pytest.fixture
def stored(embedded_stack):
    """Objects put straight into a made-up video's published tree (the route reads S3 only), removed after."""
    video_id = f"route-{uuid.uuid4().hex[:8]}"
    keys: list[str] = []

    def put(path: str, data: bytes | None = None, file: Path | None = None) -> str:
        key = layout.video_prefix(video_id) + path
        if file is not None:
            embedded_stack.storage.client.upload_file(str(file), "vodflow", key,
                                                      ExtraArgs={"ContentType": layout.content_type(key)})
        else:
            embedded_stack.storage.client.put_object(Bucket="vodflow", Key=key, Body=data,
                                                     ContentType=layout.content_type(key))
        keys.append(key)
        return media_url(embedded_stack, video_id, path)

    yield put
    for key in keys:
        embedded_stack.storage.delete_key(key)


def test_a_200_mb_download_streams_through_the_api_server_in_little_memory(embedded_stack, stored, tmp_path):
    big = tmp_path / "big.mp4"
    digest = hashlib.sha256()
    with open(big, "wb") as out:
        for _ in range(200):
            block = os.urandom(MiB)
            digest.update(block)
            out.write(block)
    url = stored("v1/mp4/big.mp4", file=big)
    requests.head(url, headers=auth(embedded_stack), timeout=30)  # the route's imports and clients: loaded
    baseline = peak = api_server_rss(embedded_stack)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.05):
            peak = max(peak, api_server_rss(embedded_stack))

    sampler = threading.Thread(target=sample)
    sampler.start()
    received = hashlib.sha256()
    size = 0
    try:
        with requests.get(url, headers=auth(embedded_stack), stream=True, timeout=120) as response:
            assert response.status_code == 200, response.text[:300]
            headers = response.headers
            for block in response.iter_content(MiB):
                received.update(block)
                size += len(block)
    finally:
        done.set()
        sampler.join()
    peak = max(peak, api_server_rss(embedded_stack))
    growth = (peak - baseline) / MiB
    print(f"\n200 MiB through the media route: api-server RSS {baseline / MiB:.0f} MiB → peak {peak / MiB:.0f} MiB "
          f"(+{growth:.1f} MiB)")
    assert size == 200 * MiB and received.digest() == digest.digest()
    assert growth < 50, f"the api-server grew by {growth:.0f} MiB serving a 200 MiB object"
    assert headers["content-length"] == str(200 * MiB) and headers["accept-ranges"] == "bytes"
    assert headers["x-content-type-options"] == "nosniff"


def test_ranges_are_answered_with_exactly_their_bytes(embedded_stack, stored):
    data = os.urandom(MiB + 123)
    url = stored("v1/mp4/seek.mp4", data)
    size = len(data)

    def get(range_header: str | None = None, method: str = "GET") -> requests.Response:
        headers = {**auth(embedded_stack), **({"Range": range_header} if range_header else {})}
        return requests.request(method, url, headers=headers, timeout=30)

    for header, first, last in (("bytes=100-199", 100, 199), ("bytes=0-0", 0, 0), ("bytes=1000000-", 1000000, size - 1),
                                ("bytes=-500", size - 500, size - 1), ("bytes=5-99999999", 5, size - 1),
                                ("bytes=-99999999", 0, size - 1)):
        answer = get(header)
        assert answer.status_code == 206, (header, answer.status_code)
        assert answer.content == data[first : last + 1], header
        assert answer.headers["content-range"] == f"bytes {first}-{last}/{size}", header
        assert answer.headers["content-length"] == str(last - first + 1), header
        assert answer.headers["content-type"] == "video/mp4" and answer.headers["accept-ranges"] == "bytes"
    for header in ("bytes=2000000-", f"bytes={size}-", "bytes=-0"):
        answer = get(header)
        assert answer.status_code == 416, (header, answer.status_code)
        assert answer.headers["content-range"] == f"bytes */{size}", header
    whole = get()
    assert whole.status_code == 200 and whole.content == data and whole.headers["content-length"] == str(size)
    assert whole.headers["accept-ranges"] == "bytes" and whole.headers["x-content-type-options"] == "nosniff"
    assert whole.headers.get("etag") and whole.headers.get("last-modified")
    for ignored in ("bytes=0-1,5-6", "bytes=9-3", "items=0-1"):  # not one valid byte range: the whole object
        answer = get(ignored)
        assert answer.status_code == 200 and answer.content == data, ignored
    head = get(method="HEAD")
    assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == str(size)
    head = get("bytes=10-19", method="HEAD")
    assert head.status_code == 206 and head.headers["content-range"] == f"bytes 10-19/{size}"
    playlist = requests.get(stored("v1/hls/master.m3u8", b"#EXTM3U\n"), headers=auth(embedded_stack), timeout=30)
    assert playlist.status_code == 200 and playlist.headers["x-content-type-options"] == "nosniff"
    assert playlist.headers["content-type"] == "application/vnd.apple.mpegurl"


def test_every_published_path_is_served_and_nothing_else(embedded_stack, stored):
    """Alternate audio and subtitles sit three levels under hls/; a run's intermediates (chunks/), records
    (track.json), dot segments and deeper paths are refused even when an object is there."""
    allowed = ["v1/hls/subs/en/index.m3u8", "v1/hls/subs/en-2/seg_00001.vtt", "v1/hls/audio/fr/seg_00000.ts",
               "v1/hls/audio/pt-br/index.m3u8", "v2/cmaf/720p/init.mp4", "v1/cmaf/audio_128k/seg_00001.m4s",
               "v1/storyboard/sprite_000.jpg", "v1/thumbs/poster.jpg", "v1/hls/720p/iframes.m3u8"]
    for path in allowed:
        answer = requests.get(stored(path, b"x"), headers=auth(embedded_stack), timeout=30)
        assert answer.status_code == 200 and answer.content == b"x", (path, answer.status_code)
    refused = ["v1/chunks/audio/a.m4a", "v1/cmaf/720p/track.json", "v1/hls/subs/../../../x/v1/hls/master.m3u8",
               "v1/hls/subs/./en/index.m3u8", "v1/hls/a/b/c/d/e.ts", "v1/hls/.hidden.m3u8", "x1/hls/master.m3u8",
               "v1/hls/subs/en/index.m3u8.txt", "v1/hls//en/index.m3u8"]
    base = urlsplit(embedded_stack.airflow.base_url)
    for path in refused:
        url = stored(path, b"not for players")
        connection = http.client.HTTPConnection(base.hostname, base.port, timeout=30)
        try:  # as written: requests would resolve the dot segments before sending
            connection.request("GET", urlsplit(url).path, headers=auth(embedded_stack))
            answer = connection.getresponse()
            assert (answer.status, json.loads(answer.read())) == (404, {"detail": "No such media."}), path
        finally:
            connection.close()


def _dubbed_and_subtitled(folder: Path) -> Path:
    """Two audio tracks (French default, English) and an English SRT subtitle track."""
    dubbed = make_two_language_sample(str(folder / "dubbed.mkv"), 14.0)
    srt = folder / "en.srt"
    srt.write_text(SAMPLE_SRT)
    out = folder / "tracks.mkv"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", dubbed,  # noqa: S603
                    "-i", str(srt), "-map", "0", "-map", "1", "-c", "copy", "-c:s", "srt",
                    "-metadata:s:s:0", "language=eng", str(out)], check=True)
    return out


@pytest.mark.skipif(not (BROWSER_DIR / "node_modules" / "playwright-core").exists(),
                    reason="needs `make browser` (playwright-core) and Debian's chromium")
def test_hls_js_plays_alternate_audio_and_subtitles_through_the_route(embedded_stack, tmp_path):
    stack = embedded_stack
    key = f"uploads/route-{uuid.uuid4().hex[:8]}/tracks.mkv"
    stack.storage.client.upload_file(str(_dubbed_and_subtitled(tmp_path)), "vodflow", key)
    video_id = f"tracks-{uuid.uuid4().hex[:8]}"
    run_id = stack.client.trigger(DAG, {"source": f"s3://vodflow/{key}", "video_id": video_id, "ladder": ["240p"]})
    assert stack.client.wait_for_run(DAG, run_id, timeout=300)["state"] == "success"
    video = requests.get(f"{stack.airflow.base_url}/vodflow/api/videos/{video_id}", headers=auth(stack),
                         timeout=30).json()
    assert video["master_url"] == f"/vodflow/api/videos/{video_id}/media/v1/hls/master.m3u8"  # no public base URL
    shots = ARTIFACTS / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["node", str(BROWSER_DIR / "route.mjs"), stack.airflow.base_url, "admin", "admin",  # noqa: S603
                             video_id, str(shots)], cwd=BROWSER_DIR, capture_output=True, text=True, timeout=240,
                            check=False)
    findings = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else {}
    print(json.dumps({k: v for k, v in findings.items() if k != "media"}))
    assert "error" not in findings and result.returncode == 0, (findings, result.stderr[-2000:])
    assert sorted(t["lang"] for t in findings["audio"]) == ["en", "fr"]
    assert [(t["name"], t["lang"]) for t in findings["subtitles"]] == [("English", "en")]
    assert findings["audio_track"] == 1 and findings["audio_fragments"] >= 1  # the other track's own segments
    assert findings["subtitle_fragments"] >= 1 and any("Hello" in cue for cue in findings["cues"]), findings["cues"]
    assert findings["playing"]["err"] is None and findings["playing"]["t"] > 2
    fetched = findings["media"]
    assert {m["status"] for m in fetched} <= {200, 206}, [m for m in fetched if m["status"] not in (200, 206)]
    assert any("/hls/subs/" in m["url"] for m in fetched) and any("/hls/audio/" in m["url"] for m in fetched)
