"""The media route and early playback (S3 over HTTP): a building version's early playlists are served and never
cached (they grow under their keys), what they list is served as any segment, and a run's intermediates stay
refused."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from vodflow import pipeline
from vodflow.web import media

pytestmark = pytest.mark.integration


@pytest.fixture
def client(airflow_env) -> TestClient:
    app = FastAPI()
    app.include_router(media.router)  # the route alone: the plugin adds Airflow's auth in front of it
    return TestClient(app)


def test_early_playlists_are_served_no_cache(client):
    storage = pipeline.Services.load().storage
    video_id = f"early-{uuid.uuid4().hex[:8]}"
    stored = {"v1/early/master.m3u8": b"#EXTM3U\n", "v1/early/360p/index.m3u8": b"#EXTM3U\n",
              "v1/early/360p/seg_00000.ts": b"ts", "v1/hls/360p/seg_00000.ts": b"ts", "v1/chunks/360p.c000.ts": b"x"}
    for path, body in stored.items():
        storage.client.put_object(Bucket="vodflow", Key=f"videos/{video_id}/{path}", Body=body)
    expected = {"v1/early/master.m3u8": "no-cache", "v1/early/360p/index.m3u8": "no-cache",
                "v1/early/360p/seg_00000.ts": media.CACHED, "v1/hls/360p/seg_00000.ts": media.CACHED}
    for path, cache_control in expected.items():
        answer = client.get(f"/api/videos/{video_id}/media/{path}")
        assert answer.status_code == 200 and answer.content == stored[path], path
        assert answer.headers["cache-control"] == cache_control, path
    assert client.get(f"/api/videos/{video_id}/media/v1/chunks/360p.c000.ts").status_code == 404
