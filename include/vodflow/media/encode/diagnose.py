"""Why an ffmpeg run failed: the video's fault (``BadInput``, never retried) or the machine's (a full scratch disk,
a killed process: retried). Every module that runs ffmpeg asks this one.
"""

from __future__ import annotations

import os
import shutil

from vodflow import errors
from vodflow.errors import BadInput, MediaToolError, VodflowError
from vodflow.media.encode.process import RunResult

DECODE_FAILURE_MARKERS = ("Invalid data found", "moov atom not found", "error reading header",
                          "Error while decoding", "corrupt", "Invalid NAL unit")
MIN_FREE_SCRATCH_BYTES = 64 * 1024 * 1024


def classify_failure(result: RunResult, out_dir: str | None = None) -> VodflowError:
    """The reason an ffmpeg run failed: the video's fault (BadInput) or the machine's (retried)."""
    tail = result.stderr_tail
    last = next((line for line in reversed(tail.splitlines()) if line.strip()), "no output")[:300]
    if result.returncode < 0:
        return MediaToolError(f"ffmpeg was killed by signal {-result.returncode}", tail)
    # ffmpeg often reports a full disk only as "Failed to open file" or "Input/output error": look at the disk.
    if "No space left on device" in tail or (out_dir and free_bytes(out_dir) < MIN_FREE_SCRATCH_BYTES):
        where = f" at {out_dir}" if out_dir else ""
        return MediaToolError(f"the scratch disk is full{where} (No space left on device); ffmpeg said: {last}", tail)
    if any(marker in tail for marker in DECODE_FAILURE_MARKERS):
        return BadInput(errors.UNREADABLE, f"The video cannot be decoded; the file is corrupt. ffmpeg said: {last}")
    return MediaToolError(f"ffmpeg failed with exit code {result.returncode}: {last}", tail)


def free_bytes(path: str) -> int:
    """Free space of the filesystem holding ``path`` (or its nearest existing parent)."""
    current = os.path.abspath(path)
    while True:
        try:
            return shutil.disk_usage(current).free
        except OSError:
            parent = os.path.dirname(current)
            if parent == current:
                return MIN_FREE_SCRATCH_BYTES  # cannot tell: say nothing about the disk
            current = parent


def raise_if_disk_full(out_dir: str) -> None:
    if free_bytes(out_dir) < MIN_FREE_SCRATCH_BYTES:
        raise MediaToolError(f"the scratch disk is full at {out_dir} (No space left on device)")
