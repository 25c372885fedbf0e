"""Watermark geometry and the checks on a PNG's header, pure (no ffmpeg)."""

from __future__ import annotations

import struct
import zlib

import pytest

from vodflow import errors
from vodflow.errors import BadInput
from vodflow.media.encode.watermark import Overlays, Watermark, check_header, check_size, placement


def header(width: int, height: int, colour: int, extra: bytes = b"") -> bytes:
    body = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    ihdr = struct.pack(">I", len(body)) + b"IHDR" + body + struct.pack(">I", zlib.crc32(b"IHDR" + body))
    return b"\x89PNG\r\n\x1a\n" + ihdr + extra


@pytest.mark.parametrize(("position", "x", "y"), [("top-left", 38, 38), ("top-right", 1280 - 154 - 38, 38),
                                                  ("bottom-left", 38, 720 - 76 - 38),
                                                  ("bottom-right", 1280 - 154 - 38, 720 - 76 - 38)])
def test_corners(position: str, x: int, y: int) -> None:
    box = placement(Watermark(width=200, height=100, position=position), 1280, 720)
    assert (box.x, box.y, box.width, box.height) == (x, y, 154, 76)  # 12 % of 1280 = 153.6 → 154; 77 → even 76


def test_same_relative_size_on_every_rung() -> None:
    mark = Watermark(width=200, height=100, size=0.2, margin=0.05)
    for width, height in ((1920, 1080), (640, 360), (320, 180)):
        box = placement(mark, width, height)
        assert abs(box.width - 0.2 * width) <= 2 and abs(box.x + box.width + 0.05 * width - width) <= 2
        assert box.width % 2 == box.height % 2 == box.x % 2 == box.y % 2 == 0


def test_a_tall_mark_on_a_portrait_video_fits_its_height() -> None:
    box = placement(Watermark(width=100, height=1000, size=0.5, margin=0.1), 360, 640)
    assert box.y >= 0 and box.y + box.height <= 640 - 36 and box.height / box.width == pytest.approx(10, rel=0.1)


@pytest.mark.parametrize(("head", "reason"), [
    (b"\xff\xd8\xff\xe0" + b"\0" * 40, "is a JPEG"),
    (b"GIF89a" + b"\0" * 40, "not a PNG"),
    (header(64, 64, 2), "no alpha channel"),
    (header(64, 64, 3), "no alpha channel"),
    (header(4097, 10, 6), "4097x10 pixels"),
    (header(0, 10, 6), "0x10 pixels"),
])
def test_refused_headers(head: bytes, reason: str) -> None:
    with pytest.raises(BadInput) as caught:
        check_header(head)
    assert caught.value.code == errors.INVALID_REQUEST and reason in caught.value.message, caught.value.message


def test_accepted_headers() -> None:
    assert check_header(header(4096, 4096, 6)) == (4096, 4096)
    assert check_header(header(30, 20, 4)) == (30, 20)
    assert check_header(header(30, 20, 3, b"\0\0\0\x01tRNS\0")) == (30, 20)  # a palette with transparency


def test_size_limit() -> None:
    check_size(2 * 1024 * 1024)
    with pytest.raises(BadInput, match=r"2\.0 MiB; at most 2 MiB"):
        check_size(2 * 1024 * 1024 + 1)


def test_no_marks_no_change() -> None:
    import ffmpeg

    video = ffmpeg.input("x.mp4")["v:0"]
    assert Overlays((), [(640, 360, "SDR")]).on(video, 640, 360) is video


def test_the_mark_is_held_to_the_source_allowlist() -> None:
    """The trigger (a 400) and register (invalid_request) share this check: the mark is read like the source."""
    from vodflow.pipeline.prepare import check_sources_allowed
    from vodflow.request import RequestError
    from vodflow.settings import Settings

    settings = Settings(source_buckets=("uploads-bucket",), source_prefixes=("in/",))
    conf = {"source": "s3://uploads-bucket/in/a.mp4"}
    check_sources_allowed({**conf, "watermark": {"image": "s3://uploads-bucket/in/logo.png"}}, settings)
    for image, reason in (("s3://private-bucket/in/logo.png", "bucket 'private-bucket' is not allowed"),
                          ("s3://uploads-bucket/secret/logo.png", "not under an allowed prefix")):
        with pytest.raises(RequestError) as caught:
            check_sources_allowed({**conf, "watermark": {"image": image}}, settings)
        assert caught.value.field == "watermark" and caught.value.message.startswith("watermark.image: ")
        assert reason in caught.value.message
