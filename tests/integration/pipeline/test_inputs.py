"""Awkward real-world inputs through the pipeline's steps (real ffmpeg, S3 over HTTP, the Postgres catalog): an
upload that asks for more decoding than a job may do, a music upload whose picture changes every 10 s, and a
broadcast MPEG-TS cut in chunks."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from airflow.sdk.definitions.retry_policy import RetryAction

from vodflow import errors, layout, pipeline
from vodflow.devtools.samples import make_decode_bomb
from vodflow.errors import BadInput

from .helpers import upload

pytestmark = pytest.mark.integration
DAGS = Path(__file__).resolve().parents[3] / "dags"


def _ffprobe(path: Path, *entries: str) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", *entries, "-of", "json", str(path)],  # noqa: S603
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def _dag_retry_policy():
    """The retry policy transcode_video's tasks run with, from the DAG file itself."""
    spec = importlib.util.spec_from_file_location("transcode_video_dag", DAGS / "transcode_video.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(DAGS))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(DAGS))
    return module.DEFAULT_ARGS["retry_policy"]


def test_an_upload_demanding_unbounded_decoding_is_refused_at_probe_and_never_retried(services, tmp_path):
    """8192x8192 at 60 fps for 3.5 h in 200 kB: each limit alone lets it through (the side is at most 8192, the
    duration at most 4 h); the decode budget (4 h of 4K60) does not. Refused at probe, before any encode, with its
    reason; the DAG's retry policy fails it at once; nothing is published."""
    bomb = Path(make_decode_bomb(str(tmp_path / "bomb.mkv")))
    assert bomb.stat().st_size < 1_000_000
    source = upload(services, bomb, f"uploads/{uuid.uuid4().hex[:6]}/bomb.mkv")
    job = pipeline.register({"source": source}, "run-bomb", services)
    with pytest.raises(BadInput) as caught:
        pipeline.probe_source(services, job)
    assert caught.value.code == errors.TOO_LARGE
    assert "8192x8192 at 60 fps" in caught.value.message and "4 h of 4K at 60 fps" in caught.value.message
    assert _dag_retry_policy().evaluate(caught.value, 1, 4).action == RetryAction.FAIL
    pipeline.record_failure(job.to_dict(), "prepare", None, caught.value, 1, services)
    pipeline.discard_unpublished(job, services)
    video = services.catalog.get_video(job.video_id)
    assert (video["status"], video["error_code"]) == ("failed", errors.TOO_LARGE)
    assert video["error_message"] == caught.value.message
    assert services.catalog.get_renditions(job.video_id, job.version) == []  # never planned, never encoded
    assert services.storage.list_keys(layout.video_prefix(job.video_id)) == []

