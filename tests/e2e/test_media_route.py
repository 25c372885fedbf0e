"""The API's media route in the running api-server (the default config: no public base URL, so players fetch
everything through it): a large download streamed with little memory, byte ranges."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import uuid
from pathlib import Path

import psutil
import pytest
import requests

from vodflow import layout

pytestmark = pytest.mark.e2e
DAG = "transcode_video"
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
            assert response.headers["content-length"] == str(200 * MiB)
            assert response.headers["accept-ranges"] == "bytes"
            assert response.headers["x-content-type-options"] == "nosniff"
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
