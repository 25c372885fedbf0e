"""Run ffmpeg: argument lists only, live progress, a hard timeout, and no orphan when the task dies.

If the Airflow task process is killed (SIGKILL, a lost worker), PR_SET_PDEATHSIG makes the kernel kill ffmpeg
too, so a dead task never leaves an encoder burning CPU and writing into a scratch directory.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from vodflow.errors import MediaToolError

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


def _child_setup(niceness: int) -> Callable[[], None]:
    def setup() -> None:  # pragma: no cover - runs in the child between fork and exec
        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if niceness:
            os.nice(niceness)

    return setup


def parse_progress(lines: list[str]) -> dict[str, str]:
    """ffmpeg ``-progress`` emits ``key=value`` lines; a block ends with ``progress=continue|end``."""
    block: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.strip().partition("=")
        if sep:
            block[key] = value
    return block


def progress_percent(block: dict[str, str], duration: float) -> float | None:
    raw = block.get("out_time_us") or block.get("out_time_ms")  # both are microseconds in ffmpeg >= 4
    if not raw or raw == "N/A" or duration <= 0:
        return None
    try:
        seconds = int(raw) / 1_000_000
    except ValueError:
        return None
    return max(0.0, min(100.0, 100.0 * seconds / duration))


@dataclass
class Throttle:
    """Pass progress on at most every ``interval`` seconds and only when it moved by ``step`` points."""

    interval: float = 2.0
    step: float = 1.0
    _last_time: float = 0.0
    _last_value: float = -100.0

    def ready(self, value: float, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if now - self._last_time >= self.interval and value - self._last_value >= self.step:
            self._last_time, self._last_value = now, value
            return True
        return False


@dataclass
class RunResult:
    returncode: int
    stderr_tail: str
    elapsed: float


def run_ffmpeg(args: list[str], *, duration: float = 0.0, timeout: float,
               on_progress: Callable[[float], None] | None = None, redact: str | None = None,
               niceness: int = 0) -> RunResult:
    """Run an ffmpeg argument list to completion; call ``on_progress(percent)`` as it advances.

    ``args`` must not contain ``-progress``; it is added here. ``niceness`` lowers the CPU priority of work
    that is not on the critical path. Raises MediaToolError on timeout.
    """
    command = [args[0], "-progress", "pipe:1", "-nostats", *args[1:]]
    shown = " ".join(command) if not redact else " ".join(command).replace(redact, "<source>")
    log.info("Running: %s", shown)
    started = time.monotonic()
    proc = subprocess.Popen(  # noqa: S603 - argument list, no shell
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=_child_setup(niceness), text=True, errors="replace",
    )
    stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
    reader = threading.Thread(target=lambda: stderr_tail.extend(proc.stderr or []), daemon=True)
    reader.start()
    timed_out = threading.Event()

    def _kill_on_timeout() -> None:
        timed_out.set()
        proc.kill()

    watchdog = threading.Timer(timeout, _kill_on_timeout)
    watchdog.daemon = True
    watchdog.start()
    try:
        block: list[str] = []
        for line in proc.stdout or []:
            block.append(line)
            if line.startswith("progress="):
                percent = progress_percent(parse_progress(block), duration)
                block = []
                if on_progress and percent is not None:
                    on_progress(percent)
        returncode = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        watchdog.cancel()
        reader.join(timeout=5)
    tail = "".join(stderr_tail)
    if redact:
        tail = tail.replace(redact, "<source>")
    if timed_out.is_set():
        raise MediaToolError(f"ffmpeg did not finish within {timeout:.0f} s and was stopped", tail)
    return RunResult(returncode=returncode, stderr_tail=tail, elapsed=time.monotonic() - started)
