"""Which failed videos the retry endpoint and the operator view refuse to retry: only what is a fact of the source
file itself; a code a request field or a setting can change stays retryable (so does a code added later)."""

from __future__ import annotations

import pytest

from vodflow import errors
from vodflow.web.api import retry_refusal


def _failed(code: str) -> dict:
    return {"id": "vid", "status": "failed", "error_code": code}


@pytest.mark.parametrize("code", [errors.EMPTY_FILE, errors.NOT_A_VIDEO, errors.NO_VIDEO_STREAM])
def test_a_fact_of_the_source_file_is_never_retried(code):
    refusal = retry_refusal(_failed(code))
    assert refusal is not None and refusal.startswith("Retrying cannot help") and code in refusal


@pytest.mark.parametrize("code,fix", [
    (errors.TOO_LARGE, "an oversized sidecar caption: a retry with captions null; or a raised max_size_bytes"),
    (errors.UNREADABLE, "a false 'truncated' on a chunked run: a retry with chunk_seconds null"),
    (errors.TOO_SHORT, "min_duration_seconds lowered by the operator"),
    (errors.UNSUPPORTED_DIMENSIONS, "min_dimension/max_dimension changed by the operator"),
    (errors.SOURCE_MISSING, "the upload arrived after the run"),
    (errors.INVALID_REQUEST, "corrected request fields"),
    (errors.INTERNAL_ERROR, "a transient fault"),
    ("a_code_from_the_future", "unknown codes default to retryable"),
])
def test_a_failure_a_request_or_a_setting_can_change_may_be_retried(code, fix):
    assert retry_refusal(_failed(code)) is None, fix


def test_a_running_or_ready_video_is_not_retried():
    assert "running already" in retry_refusal({"id": "v", "status": "transcoding", "error_code": None})
    assert "only a failed video" in retry_refusal({"id": "v", "status": "ready", "error_code": None})
