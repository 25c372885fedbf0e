"""Watermarks through the pipeline (real S3 over HTTP, real Postgres, real ffmpeg): a bad image is
`invalid_request` at register with its reason, before anything decodes it — a JPEG, a PNG without alpha, a 50 MB
PNG (never read: its HEAD says), a PNG claiming 20000x20000 pixels, an image outside the source allowlist — and a
good mark reaches the published rendition (the encode reads the copy parked in our bucket)."""

from __future__ import annotations

import dataclasses
import struct
import subprocess
import uuid
import zlib
from pathlib import Path

import pytest

from vodflow import errors, layout, pipeline
from vodflow.devtools.samples import SampleSpec, make_sample
from vodflow.errors import BadInput
from vodflow.media.encode.watermark import placement

from .helpers import run_all, upload

pytestmark = pytest.mark.integration


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(width: int, height: int, colour: int = 6) -> bytes:
    """A PNG signature and IHDR (8-bit, ``colour`` type): what the checks read before any decode."""
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0))


def lavfi_image(path: Path, spec: str) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", spec, "-frames:v", "1",  # noqa: S603
                    str(path)], check=True)
    return path


def _gets(services: pipeline.Services) -> list[dict]:
    seen: list[dict] = []
    services.storage.client.meta.events.register(
        "before-parameter-build.s3.GetObject", lambda params, **_: seen.append(dict(params)))
    return seen


def refusal(services: pipeline.Services, media, image: str | None = None, path: Path | None = None,
            name: str = "mark.png") -> BadInput:
    key = uuid.uuid4().hex[:6]
    source = upload(services, media["small"], f"uploads/{key}/clip.mp4")
    mark = image or upload(services, path, f"uploads/{key}/{name}")
    with pytest.raises(BadInput) as caught:
        pipeline.prepare({"source": source, "watermark": {"image": mark}, "ladder": ["240p"]}, f"run-wm-{key}",
                         lambda step, job: None, services)
    assert caught.value.code == errors.INVALID_REQUEST, caught.value.message
    return caught.value


def test_a_jpeg_is_refused(services, media, tmp_path) -> None:
    jpeg = lavfi_image(tmp_path / "logo.jpg", "color=c=red:s=64x32")
    assert "JPEG" in refusal(services, media, path=jpeg, name="logo.jpg").message


def test_a_png_without_alpha_is_refused(services, media, tmp_path) -> None:
    rgb = lavfi_image(tmp_path / "rgb.png", "color=c=red:s=64x32,format=rgb24")
    assert "no alpha channel" in refusal(services, media, path=rgb).message


def test_a_50_mb_png_is_refused_unread(services, media, tmp_path) -> None:
    huge = tmp_path / "huge.png"
    with huge.open("wb") as out:  # a valid header, then a hole: 50 MB on disk costs nothing
        out.write(png_header(64, 32))
        out.truncate(50 * 1000 * 1000)
    gets = _gets(services)
    message = refusal(services, media, path=huge).message
    assert "47.7 MiB" in message and "at most 2 MiB" in message, message
    assert not [g for g in gets if g["Key"].endswith("huge.png")]


def test_a_decode_bomb_is_refused_by_its_header(services, media, tmp_path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(20000, 20000) + _chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + _chunk(b"IEND", b""))
    assert "20000x20000" in refusal(services, media, path=bomb).message


def test_a_mark_outside_the_allowlist_is_refused_and_recorded(services, media) -> None:
    caught = refusal(services, media, image="s3://someone-elses-bucket/logo.png")
    assert "watermark.image: bucket 'someone-elses-bucket' is not allowed" in caught.message, caught.message


def test_a_bad_watermark_setting_fails_the_run(services, media) -> None:
    services.settings = dataclasses.replace(services.settings, watermark='{"image": "s3://vodflow/x.png", "size": 3}')
    assert "watermark setting" in refusal(services, media, image="s3://vodflow/any.png").message


@pytest.mark.parametrize("chunked", [False, True])
def test_the_mark_reaches_the_published_rendition(services, media, tmp_path, chunked) -> None:
    """A white opaque mark, top-left: its box in the published 240p is white (limited-range luma 235), whole or
    in two chunks (a frame from each)."""
    key = uuid.uuid4().hex[:6]
    clip = media["small"]
    if chunked:
        clip = tmp_path / "long.mp4"
        make_sample(str(clip), SampleSpec(426, 240, 13.0, "30", audio=True))
    source = upload(services, clip, f"uploads/{key}/clip.mp4")
    png = lavfi_image(tmp_path / "white.png", "color=c=white:s=80x40,format=rgba")
    spec = {"image": upload(services, png, f"uploads/{key}/white.png"), "position": "top-left", "size": 0.25,
            "margin": 0.05}
    params = {"source": source, "watermark": spec, "ladder": ["240p"], "chunk_seconds": 6 if chunked else 0}
    run = run_all(services, params, f"run-wm-{key}")
    job = run["job"]
    assert (len(run["items"]) > 2) == chunked  # chunks and the audio, or the whole video
    assert [m.image for m in job.watermarks] == [f"{layout.chunks_prefix(job.video_id, job.version)}watermark-0.png"]
    local = tmp_path / "hls"
    services.storage.download_tree(layout.hls_prefix(job.video_id, job.version) + "240p/", str(local))
    width, height = 426, 240
    box = placement(job.watermarks[0], width, height)
    for at in (1, 8) if chunked else (1,):
        out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(local / "index.m3u8"), "-ss", f"{at}",  # noqa: S603
                              "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"],
                             capture_output=True, check=True).stdout
        inside = [out[y * width + x] for y in range(box.y + 2, box.y + box.height - 2)
                  for x in range(box.x + 2, box.x + box.width - 2)]
        assert min(inside) >= 228, (at, box, min(inside))
    assert services.catalog.get_video(job.video_id)["status"] == "ready"


def test_an_imposed_mark_stays_under_the_requests_own(services, media, tmp_path) -> None:
    """The watermark setting's mark is on every video; a request's own goes above it, and ``watermark: null``
    removes nothing."""
    key = uuid.uuid4().hex[:6]
    brand = upload(services, lavfi_image(tmp_path / "brand.png", "color=c=white:s=64x64,format=rgba"),
                   f"brand/{key}.png")
    own = upload(services, lavfi_image(tmp_path / "own.png", "color=c=white:s=80x40,format=rgba"),
                 f"uploads/{key}/own.png")
    services.settings = dataclasses.replace(services.settings,
                                            watermark=f'{{"image": "{brand}", "position": "top-right"}}')
    for mark, expected in (({"image": own}, [(64, 64, "top-right"), (80, 40, "bottom-right")]),
                           (None, [(64, 64, "top-right")])):
        source = upload(services, media["small"], f"uploads/{key}/clip-{bool(mark)}.mp4")  # a video each
        job, *_ = pipeline.prepare({"source": source, "watermark": mark, "ladder": ["240p"]},
                                   f"run-wm-{key}-{bool(mark)}", lambda step, job: None, services)
        assert [(m.width, m.height, m.position) for m in job.watermarks] == expected
