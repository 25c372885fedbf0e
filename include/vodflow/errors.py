"""Failure taxonomy: every vodflow exception is a ``VodflowError``, and its type says whether trying again can help.

Two kinds of failure matter to operators: bad input, which can never succeed and must fail at once with a
reason a person understands, and everything else (S3, database, a killed worker), which is retried with
backoff. The DAG's retry policy maps ``Permanent`` to "fail now"; nothing else needs to know.

    VodflowError            code + message; retried with backoff unless Permanent
    ├── Permanent           trying again unchanged cannot help: failed at once
    │   ├── BadInput        the source or the request can never be transcoded (a bad-input code)
    │   └── Refused         a request or an action refused as asked (the web layer answers 4xx)
    ├── StandDown           the video is another run's or a delete's now: the caller stands down (skip, 409)
    └── MediaToolError      ffmpeg/ffprobe failed, perhaps transiently
Other layers subclass these next to where they are raised (``catalog.records``, ``request``, ``storage``,
``triggers.multipart`` …), keeping the built-in base (``ValueError``, ``LookupError``) their callers catch.
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
    """The root of every vodflow exception: a stable machine ``code`` (what the catalog records when one ends a run)
    and a ``message`` meant for people."""

    code: str = INTERNAL_ERROR

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Permanent(VodflowError):
    """Fails the same way however often it is tried: the DAGs' retry policy fails it at once."""


class BadInput(Permanent):
    """The source or the request can never be transcoded; retrying cannot help."""

    def __init__(self, code: str, message: str) -> None:
        if code not in BAD_INPUT_CODES:
            raise ValueError(f"unknown bad-input code {code!r}")
        super().__init__(code, message)


class Refused(Permanent):
    """A request or an action that cannot be done as asked; the caller must change it. Its text is the message
    alone: the web layer answers with it (400, 404, 409, 422 by type, where the request arrives)."""

    code = INVALID_REQUEST

    def __init__(self, message: str) -> None:
        Exception.__init__(self, message)
        self.message = message


class StandDown(VodflowError):
    """The video is another run's, or a delete's, right now (or a newer version is current): the caller stands down
    (a run skips, the API answers 409). Not bad input: the same thing succeeds later or from its own run. Its text is
    the message alone."""

    def __init__(self, message: str) -> None:
        Exception.__init__(self, message)
        self.message = message


class MediaToolError(VodflowError):
    """ffmpeg/ffprobe failed for a reason that may be transient (disk full, killed, I/O)."""

    def __init__(self, message: str, stderr_tail: str = "") -> None:
        super().__init__(INTERNAL_ERROR, message)
        self.stderr_tail = stderr_tail
