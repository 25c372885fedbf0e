"""S3 through the provider hook, over real HTTP to a local S3 server."""

from __future__ import annotations

import pytest
import requests

from vodflow import errors
from vodflow.errors import BadInput
from vodflow.layout import IMMUTABLE_CACHE_CONTROL, S3Location
from vodflow.storage import Storage

pytestmark = pytest.mark.integration


@pytest.fixture
def storage(airflow_env) -> Storage:
    return Storage("aws_default", "vodflow")


def test_upload_tree_sets_content_types_and_cache_control(storage, tmp_path):
    files = {"master.m3u8": "#EXTM3U\n", "720p/seg_00000.ts": "ts", "720p/index.m3u8": "#EXTM3U\n",
             "poster.jpg": "jpg", "notes.bin": "x"}
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    keys = storage.upload_tree(str(tmp_path), "videos/t1/v1/", exclude=("index.m3u8",))
    assert sorted(keys) == ["videos/t1/v1/720p/seg_00000.ts", "videos/t1/v1/master.m3u8",
                            "videos/t1/v1/notes.bin", "videos/t1/v1/poster.jpg"]
    expected = {"master.m3u8": "application/vnd.apple.mpegurl", "720p/seg_00000.ts": "video/mp2t",
                "poster.jpg": "image/jpeg", "notes.bin": "application/octet-stream"}
    for name, content_type in expected.items():
        head = storage.client.head_object(Bucket="vodflow", Key=f"videos/t1/v1/{name}")
        assert head["ContentType"] == content_type
        assert head["CacheControl"] == IMMUTABLE_CACHE_CONTROL
    storage.put_text("videos/t1/v1/720p/index.m3u8", "#EXTM3U\n")
    assert storage.client.head_object(Bucket="vodflow", Key="videos/t1/v1/720p/index.m3u8")["ContentType"] == \
        "application/vnd.apple.mpegurl"
    assert storage.delete_prefix("videos/t1/v1/") == 5
    assert storage.list_keys("videos/t1/") == []
    with pytest.raises(ValueError):
        storage.delete_prefix("videos/t1")


def test_source_facts_and_presigned_reads(storage):
    storage.client.put_object(Bucket="vodflow", Key="uploads/s.mp4", Body=b"\x00\x00\x00\x20ftypisom" + b"x" * 5000)
    location = S3Location("vodflow", "uploads/s.mp4")
    info = storage.head(location)
    assert info.size == 5012 and info.etag
    assert storage.read_head(location, 12) == b"\x00\x00\x00\x20ftypisom"
    response = requests.get(storage.presigned_get(location, 60), timeout=10)
    assert response.status_code == 200 and len(response.content) == 5012


def test_missing_source_is_bad_input(storage):
    with pytest.raises(BadInput) as caught:
        storage.head(S3Location("vodflow", "uploads/nope.mp4"))
    assert caught.value.code == errors.SOURCE_MISSING
    with pytest.raises(BadInput):
        storage.head(S3Location("no-such-bucket", "x.mp4"))
