"""Source URIs, video ids, the S3 layout and the conf schema apps are held to."""

from __future__ import annotations

from datetime import UTC, datetime

import jsonschema
import pytest

from vodflow.layout import content_type, derive_video_id, hls_prefix, parse_source_uri, title_from_key
from vodflow.request import DEFAULTS, SCHEMAS
from vodflow.triggers.uploads import UploadRequestError, check_request, new_upload_key, sanitize_filename

GOOD = ["s3://vodflow/uploads/clip.mp4", "s3://my.bucket-1/uploads/a b/ünïcode (1).MOV",
        "s3://vodflow/uploads/-i /etc/passwd", "s3://vodflow/uploads/..hidden.mp4"]
BAD = ["http://example.com/a.mp4", "s3://vodflow/", "s3://vodflow/uploads/", "s3://UPPER/x.mp4",
       "s3://vodflow/uploads/../secrets.mp4", "s3://vodflow/../x", "s3://vodflow/./x", "s3://vodflow/a/..",
       "s3://vodflow/uploads/a\nb.mp4", "s3://vodflow/uploads/a\x00.mp4", "s3://vodflow/" + "x" * 2048,
       "/etc/passwd", ""]


def schema() -> dict:
    return {"type": "object", "properties": SCHEMAS, "required": ["source"]}


@pytest.mark.parametrize("uri", GOOD)
def test_good_sources_parse_and_pass_the_schema(uri):
    location = parse_source_uri(uri)
    assert location.uri == uri
    jsonschema.validate({"source": uri, **DEFAULTS}, schema())


@pytest.mark.parametrize("uri", BAD)
def test_bad_sources_are_refused_by_both(uri):
    with pytest.raises(ValueError):
        parse_source_uri(uri)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"source": uri}, schema())


@pytest.mark.parametrize("conf", [
    {"ladder": "nope"}, {"ladder": ["999p"]}, {"ladder": []}, {"video_id": "../x"}, {"video_id": "a" * 65},
    {"title": "x" * 201}, {"title": "bad\x07bell"}, {"callback_url": "ftp://x"}, {"callback_url": "javascript:1"},
])
def test_bad_options_are_refused(conf):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"source": GOOD[0], **conf}, schema())


def test_good_options_pass():
    jsonschema.validate({"source": GOOD[0], "ladder": ["720p", "360p"], "video_id": "My_video-1",
                         "title": "<script>alert(1)</script>", "callback_url": "https://app.example/hook"},
                        schema())


def test_video_id_is_deterministic_per_bucket_key_etag():
    a = derive_video_id("b", "uploads/x.mp4", '"etag1"')
    assert a == derive_video_id("b", "uploads/x.mp4", "etag1")
    assert a != derive_video_id("b", "uploads/x.mp4", "etag2")
    assert a != derive_video_id("b", "uploads/y.mp4", "etag1")
    assert a.startswith("vid_") and len(a) == 24


def test_layout_and_content_types():
    assert hls_prefix("vid_1", 3) == "videos/vid_1/v3/hls/"
    assert content_type("a/master.m3u8") == "application/vnd.apple.mpegurl"
    assert content_type("a/seg_00001.ts") == "video/mp2t"
    assert content_type("a/poster.jpg") == "image/jpeg"
    assert content_type("a/b.mp4") == "video/mp4"
    assert title_from_key("uploads/my_holiday_clip.mp4") == "my holiday clip"


# Upload requests --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "expected"), [
    ("holiday.mp4", "holiday.mp4"),
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\me\\My Video.MOV", "My_Video.mov"),
    ("-i /etc/passwd", "passwd"),
    ("-i evil.mp4", "i_evil.mp4"),
    ("<script>alert(1)</script>.mp4", "script.mp4"),  # "/" ends a folder name
    ("<b>x&y;</b>.mp4", "b.mp4"),
    ("&lt;img src=x onerror=1&gt;.mp4", "lt_img_src_x_onerror_1_gt.mp4"),
    ("vidéo été.mp4", "vid_o_t.mp4"),
    ("...", "upload"),
    (".hidden", "upload.hidden"),
    ("a" * 500 + ".mp4", "a" * 116 + ".mp4"),  # 120 characters in all
    ("bad\x00name\n.mp4", "bad_name.mp4"),
])
def test_sanitize_filename(name, expected):
    assert sanitize_filename(name) == expected


def test_upload_request_checks():
    ok = check_request({"filename": "a.mp4", "content_type": "video/mp4", "size": 10}, max_size_bytes=100)
    assert (ok.filename, ok.content_type, ok.size) == ("a.mp4", "video/mp4", 10)
    assert check_request({"filename": "a.bin", "size": 1}, 100).content_type == "application/octet-stream"
    for body, reason in [
        ({"content_type": "video/mp4", "size": 10}, "filename"),
        ({"filename": "a.mp4", "content_type": "text/html", "size": 10}, "content_type"),
        ({"filename": "a.mp4", "content_type": "video/mp4\r\nX-Evil: 1", "size": 10}, "content_type"),
        ({"filename": "a.mp4", "size": 0}, "size"),
        ({"filename": "a.mp4", "size": True}, "size"),
        ({"filename": "a.mp4", "size": "10"}, "size"),
        ({"filename": "a.mp4", "size": 101}, "maximum"),
    ]:
        with pytest.raises(UploadRequestError, match=reason):
            check_request(body, max_size_bytes=100)


def test_new_upload_keys_are_fresh_and_dated():
    at = datetime(2026, 11, 22, tzinfo=UTC)
    first, second = new_upload_key("a.mp4", at), new_upload_key("a.mp4", at)
    assert first != second
    assert first.startswith("uploads/2026/11/22/") and first.endswith("/a.mp4")
    parse_source_uri(f"s3://vodflow/{first}")
