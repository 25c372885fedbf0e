"""Run ffmpeg: argument lists only, live progress, a hard timeout, and no orphan when the task dies.

If the Airflow task process is killed (SIGKILL, the OOM killer), PR_SET_PDEATHSIG makes the kernel kill ffmpeg
too. If the process above the task dies instead (a Celery worker killed or lost: its pool processes, the tasks'
supervisors, die with it, and the task process is orphaned), the task's own watchdog notices it has lost its
parent and stops ffmpeg. Either way a dead task never leaves an encoder burning CPU and writing into a scratch
directory while the scheduler retries the task elsewhere.
"""

from __future__ import annotations

import collections
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from vodflow.errors import MediaToolError
from vodflow.redact import redact_text

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
PR_GET_PDEATHSIG = 2
_SIGKILL = int(signal.SIGKILL)
WATCH_SECONDS = 0.5  # how often the watchdog checks the timeout and whether this process lost its parent


def _resolve_prctl() -> Callable[..., int] | None:
    """libc's ``prctl``, looked up once, at import, in the parent.

    ``preexec_fn`` runs in the child between fork and exec, where only the forking thread survives: a lock
    another thread held at the fork (the dynamic loader's, taken by ``dlopen``/``dlsym``) stays locked forever
    there. So the child must not load a library or look up a symbol; it only calls this ready function.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    current = ctypes.c_int(0)  # one harmless call now, so nothing about calling it is done for the first time later
    prctl(PR_GET_PDEATHSIG, ctypes.addressof(current), 0, 0, 0)
    return prctl


_PRCTL = _resolve_prctl()


def _child_setup(niceness: int) -> Callable[[], None]:
    """What the child does before exec: die with its parent, then lower its priority. Everything it needs is
    resolved here, in the parent; the child makes plain system calls only."""
    prctl, parent = _PRCTL, os.getpid()

    def setup() -> None:  # pragma: no cover - runs in the child between fork and exec
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, _SIGKILL, 0, 0, 0)
            if os.getppid() != parent:  # the parent died before the line above: nobody would send the signal
                os.kill(os.getpid(), _SIGKILL)
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


# SVT-AV1 writes its banner and notices to stderr itself (not through ffmpeg's -loglevel): errors only, so the
# stderr tail kept for a failure's diagnosis holds ffmpeg's own lines. The environment may say otherwise.
ENCODER_ENV = {"SVT_LOG": "1"}


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
    that is not on the critical path. The logged command line and the returned stderr are redacted
    (:func:`redact_text`; ``redact``, e.g. the source URL, is shown as ``<source>``). Raises MediaToolError on
    timeout, and when this process loses its parent (the task's supervisor died: the task is lost and will be
    retried) ffmpeg is stopped and MediaToolError raised.
    """
    command = [args[0], "-progress", "pipe:1", "-nostats", *args[1:]]

    def shown(text: str) -> str:  # ``redact`` (the source) reads better as <source>; every URL's query goes
        return redact_text(text.replace(redact, "<source>") if redact else text)

    log.info("Running: %s", shown(" ".join(command)))
    started = time.monotonic()
    parent = os.getppid()
    proc = subprocess.Popen(  # noqa: S603 - argument list, no shell
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=_child_setup(niceness), text=True, errors="replace", env=ENCODER_ENV | dict(os.environ),
    )
    stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
    reader = threading.Thread(target=lambda: stderr_tail.extend(proc.stderr or []), daemon=True)
    reader.start()
    finished = threading.Event()
    stopped: list[str] = []  # why the watchdog stopped ffmpeg

    def _watch() -> None:
        deadline = started + timeout
        while not finished.wait(max(0.0, min(WATCH_SECONDS, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                stopped.append(f"ffmpeg did not finish within {timeout:.0f} s and was stopped")
            elif os.getppid() != parent:  # reparented: whatever started this process is gone
                stopped.append(f"the process that started this task (pid {parent}) is gone; ffmpeg was stopped")
            else:
                continue
            proc.kill()
            return

    watchdog = threading.Thread(target=_watch, name="ffmpeg-watchdog", daemon=True)
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
        finished.set()
        watchdog.join(timeout=5)
        reader.join(timeout=5)
    tail = shown("".join(stderr_tail))
    if stopped:
        raise MediaToolError(stopped[0], tail)
    return RunResult(returncode=returncode, stderr_tail=tail, elapsed=time.monotonic() - started)
