"""No presigned URL's signature in a log line, an error message, a catalog field or an event: per-title runs
(their probe and VMAF read the source over a presigned URL), chunked or not, and a read of a URL that fails."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

import pytest

from vodflow import errors
from vodflow.devtools.samples import make_animation_sample
from vodflow.layout import S3Location
from vodflow.media.quality.vmaf import Distorted, score
from vodflow.media.source.inputs import source_input
from vodflow.media.source.probe import probe

from .helpers import run_all, upload

pytestmark = pytest.mark.integration
SIGNED = ("X-Amz-Signature", "Signature=", "X-Amz-Credential")


def assert_unsigned(text: str, where: str) -> None:
    found = [marker for marker in SIGNED if marker.lower() in text.lower()]
    assert not found, f"{where} holds {found}: {text[:3000]}"


@pytest.mark.parametrize("chunk_seconds", [None, 6], ids=["whole", "chunked"])
def test_a_per_title_run_logs_and_records_no_signature(services, tmp_path, caplog, chunk_seconds):
    path = Path(make_animation_sample(str(tmp_path / "animation.mp4"), 640, 360, 8.0))
    source = upload(services, path, f"uploads/{uuid.uuid4().hex[:6]}/animation.mp4")
    params = {"source": source, "adaptive": True, **({"chunk_seconds": chunk_seconds} if chunk_seconds else {})}
    with caplog.at_level(logging.DEBUG, logger="vodflow"):
        run = run_all(services, params, f"run-signed-{chunk_seconds}")
    video_id = run["job"].video_id
    video = services.catalog.get_video(video_id)
    assert video["status"] == "ready"
    assert_unsigned("\n".join(r.getMessage() for r in caplog.records), "the logs")
    # The probe's and the VMAF's commands were logged, with the source's URL (its path, not its query).
    commands = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Running: ")]
    assert any("/uploads/" in c and "libvmaf" in c for c in commands), commands
    assert_unsigned(json.dumps(video, default=str), "the video's row")
    assert_unsigned(json.dumps(services.catalog.get_events(video_id), default=str), "the events")
    assert_unsigned(json.dumps(services.catalog.get_renditions(video_id, 1), default=str), "the renditions")


def test_a_failed_read_of_a_presigned_url_keeps_the_signature_out_of_the_error(services, tmp_path, media, caplog):
    """ffmpeg names the URL it could not open; the error (which becomes ``error_message``) and the log must not."""
    key = f"uploads/{uuid.uuid4().hex[:6]}/small.mp4"
    upload(services, media["small"], key)
    url = services.storage.presigned_get(S3Location("vodflow", key))
    source = probe(url, media["small"].stat().st_size, media["small"].read_bytes()[:4096])
    services.storage.delete_key(key)  # gone before the VMAF reads it (a deleted upload, an expired URL)
    with caplog.at_level(logging.DEBUG, logger="vodflow"), pytest.raises(errors.MediaToolError) as failed:
        score(source_input(url)["v:0"], [Distorted(str(media["small"]))], source.width, source.height)
    message = f"{failed.value.code}: {failed.value.message}"
    assert "/uploads/" in message and "404" in message, message  # ffmpeg's own words, with the URL's path
    assert_unsigned(message, "the error message")
    assert_unsigned(failed.value.stderr_tail, "the stderr kept with the error")
    assert_unsigned("\n".join(r.getMessage() for r in caplog.records), "the logs")
