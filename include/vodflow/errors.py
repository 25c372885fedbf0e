"""Failure taxonomy.

Two kinds of failure matter to operators: bad input, which can never succeed and must fail at once with a
reason a person understands, and everything else (S3, database, a killed worker), which is retried with
backoff. The DAG's retry policy maps ``BadInput`` to "fail now"; nothing else needs to know.
"""

from __future__ import annotations

# Error codes the catalog, the API and the UI speak (ARCHITECTURE.md, status model).
SOURCE_MISSING = "source_missing"
EMPTY_FILE = "empty_file"
NOT_A_VIDEO = "not_a_video"
NO_VIDEO_STREAM = "no_video_stream"
UNREADABLE = "unreadable"
TOO_SHORT = "too_short"
TOO_LARGE = "too_large"
UNSUPPORTED_DIMENSIONS = "unsupported_dimensions"
INVALID_REQUEST = "invalid_request"
# Not bad input: recorded when a transient fault outlived its retries or something unexpected broke.
INTERNAL_ERROR = "internal_error"

BAD_INPUT_CODES = frozenset(
    {
        SOURCE_MISSING,
        EMPTY_FILE,
        NOT_A_VIDEO,
        NO_VIDEO_STREAM,
        UNREADABLE,
        TOO_SHORT,
        TOO_LARGE,
        UNSUPPORTED_DIMENSIONS,
        INVALID_REQUEST,
    }
)


# Bad input that is a fact of the source file itself, which no request field and no setting can change: the only
# codes a retry of the same video is refused for (409). Every other code may yield to a retry: ``too_large`` from an
# oversized sidecar caption (retried with ``{"captions": null}``) or a limit an operator raised, ``unreadable`` on a
# chunked run (retried with ``{"chunk_seconds": null}``), ``too_short`` or ``unsupported_dimensions`` under a
# changed ``min_duration_seconds``/``min_dimension``, ``source_missing`` once the upload arrived, ``invalid_request``
# with corrected fields. A code added later is retryable unless it is added here.
NEVER_RETRYABLE = frozenset({EMPTY_FILE, NOT_A_VIDEO, NO_VIDEO_STREAM})


class VodflowError(Exception):
    """An error with a stable machine code and a message meant for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class BadInput(VodflowError):
    """The source or the request can never be transcoded; retrying cannot help."""

    def __init__(self, code: str, message: str) -> None:
        if code not in BAD_INPUT_CODES:
            raise ValueError(f"unknown bad-input code {code!r}")
        super().__init__(code, message)


class MediaToolError(VodflowError):
    """ffmpeg/ffprobe failed for a reason that may be transient (disk full, killed, I/O)."""

    def __init__(self, message: str, stderr_tail: str = "") -> None:
        super().__init__(INTERNAL_ERROR, message)
        self.stderr_tail = stderr_tail
