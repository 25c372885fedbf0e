"""A run's ``codecs`` through ``prepare`` (real S3 over HTTP, the catalog, ffprobe; nothing encoded): the plan and
the catalog carry every codec's renditions with their dynamic range, other codecs bring the CMAF output, and a run
started past the trigger's checks with a bad ``codecs`` fails at register as ``invalid_request``."""

from __future__ import annotations

import uuid

import pytest

from vodflow import errors, pipeline
from vodflow.errors import BadInput

from .helpers import upload

pytestmark = pytest.mark.integration


def test_prepare_plans_each_codecs_ladder_and_the_catalog_lists_them(services, media):
    source = upload(services, media["landscape"], f"uploads/{uuid.uuid4().hex[:6]}/codecs.mp4")
    job, _, plan, _ = pipeline.prepare({"source": source, "codecs": ["hevc", "av1"], "ladder": ["360p", "240p"]},
                                       f"run-{uuid.uuid4().hex[:6]}", lambda step, job: None, services)
    assert job.codecs == ("h264", "hevc", "av1") and job.outputs == ["hls", "cmaf"]
    assert plan.names == ["360p", "240p"] and plan.codecs == ("h264", "hevc", "av1")
    assert [r.name for r in plan.cmaf_renditions] == ["hevc-360p", "hevc-240p", "av1-360p", "av1-240p"]
    rows = services.catalog.get_renditions(job.video_id, job.version)
    assert [(r["name"], r["codec"], r["dynamic_range"], r["status"]) for r in rows] == [
        ("360p", "h264", "SDR", "pending"), ("240p", "h264", "SDR", "pending"),
        ("av1-360p", "av1", "SDR", "pending"), ("av1-240p", "av1", "SDR", "pending"),
        ("hevc-360p", "hevc", "SDR", "pending"), ("hevc-240p", "hevc", "SDR", "pending")]
    assert {r["name"]: r["video_kbps"] for r in rows}["av1-360p"] < {r["name"]: r["video_kbps"] for r in rows}["360p"]


def test_the_default_is_h264_alone_with_no_other_renditions(services, media):
    source = upload(services, media["small"], f"uploads/{uuid.uuid4().hex[:6]}/plain.mp4")
    job, _, plan, _ = pipeline.prepare({"source": source}, f"run-{uuid.uuid4().hex[:6]}",
                                       lambda step, job: None, services)
    assert job.codecs == ("h264",) and job.outputs == ["hls"] and plan.cmaf_renditions == ()
    assert {r["codec"] for r in services.catalog.get_renditions(job.video_id, job.version)} == {"h264"}


@pytest.mark.parametrize("codecs", [["vp8"], "vp8", 42])
def test_a_bad_codecs_value_fails_the_run_at_register(services, media, codecs):
    source = upload(services, media["small"], f"uploads/{uuid.uuid4().hex[:6]}/bad.mp4")
    with pytest.raises(BadInput) as caught:
        pipeline.register({"source": source, "codecs": codecs}, f"run-{uuid.uuid4().hex[:6]}", services)
    assert caught.value.code == errors.INVALID_REQUEST and "codecs" in str(caught.value)
