"""ffmpeg progress parsing and throttling; how ffmpeg is started and that it never outlives its task."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vodflow.errors import MediaToolError
from vodflow.media.encode.process import Throttle, parse_progress, progress_percent, run_ffmpeg

BLOCK = ["frame=300\n", "fps=58.2\n", "out_time_us=10000000\n", "out_time=00:00:10.000000\n", "progress=continue\n"]


def test_progress_from_out_time():
    assert progress_percent(parse_progress(BLOCK), 20.0) == pytest.approx(50.0)
    assert progress_percent({"out_time_us": "N/A"}, 20.0) is None
    assert progress_percent({"out_time_us": "25000000"}, 20.0) == 100.0
    assert progress_percent({"out_time_us": "-5"}, 20.0) == 0.0


def test_throttle_limits_rate_and_requires_movement():
    throttle = Throttle(interval=2.0, step=1.0)
    assert throttle.ready(1.0, now=100.0)
    assert not throttle.ready(5.0, now=101.0)  # too soon
    assert throttle.ready(5.0, now=102.5)
    assert not throttle.ready(5.5, now=110.0)  # not enough movement


# Stands in for ffmpeg (whatever arguments run_ffmpeg adds): reports how it was started, writes its pid to the
# file named by its last argument if that ends in .pid, and then works (sleeps) until it is stopped.
FAKE_FFMPEG = """#!{python}
import ctypes, os, sys, time
pdeathsig = ctypes.c_int(-1)
ctypes.CDLL(None).prctl(2, ctypes.byref(pdeathsig), 0, 0, 0)  # PR_GET_PDEATHSIG
print(f"pdeathsig={{pdeathsig.value}} nice={{os.nice(0)}}", file=sys.stderr, flush=True)
if sys.argv[-1].endswith(".pid"):
    with open(sys.argv[-1] + ".tmp", "w") as out:
        out.write(str(os.getpid()))
    os.rename(sys.argv[-1] + ".tmp", sys.argv[-1])
    time.sleep(120)
"""
# A task process: runs the fake ffmpeg through run_ffmpeg. A supervisor: starts a task process, then waits.
TASK = "import sys; from vodflow.media.encode.process import run_ffmpeg; run_ffmpeg(sys.argv[1:], timeout=120)"
SUPERVISOR = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', sys.argv[1], *sys.argv[2:]]); " \
             "time.sleep(120)"


@pytest.fixture
def fake_ffmpeg(tmp_path: Path) -> Path:
    path = tmp_path / "ffmpeg"
    path.write_text(FAKE_FFMPEG.format(python=sys.executable))
    path.chmod(0o755)
    return path


def _state(pid: int) -> str | None:
    """The process's state letter; None once it is gone (a zombie is dead, only not reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
    return None if state in ("Z", "X") else f"{state} {ppid}"


def _wait_for_pid(pidfile: Path, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while not pidfile.exists():
        assert time.monotonic() < deadline, "the fake ffmpeg never started"
        time.sleep(0.05)
    return int(pidfile.read_text())


def _dies_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _state(pid) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _kill(*pids: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_the_child_dies_with_its_parent_and_is_niced_and_loads_nothing_between_fork_and_exec(
        fake_ffmpeg, monkeypatch):
    def no_loading(*args, **kwargs):
        raise AssertionError("a library was loaded or a symbol looked up between fork and exec")

    class NoLoader:
        def __getattr__(self, name):
            no_loading()

    # Whatever the child would load, it would load through these; the child inherits the patched module.
    monkeypatch.setattr(ctypes, "CDLL", no_loading)
    monkeypatch.setattr(ctypes, "cdll", NoLoader())
    result = run_ffmpeg([str(fake_ffmpeg)], timeout=30, niceness=3)
    assert result.returncode == 0, result.stderr_tail
    assert f"pdeathsig={int(signal.SIGKILL)} nice={min(19, os.nice(0) + 3)}" in result.stderr_tail
    assert f"nice={os.nice(0)}" in run_ffmpeg([str(fake_ffmpeg)], timeout=30).stderr_tail  # 0: left as it is


def test_ffmpeg_dies_when_its_task_process_is_killed(fake_ffmpeg, tmp_path):
    pidfile = tmp_path / "ffmpeg.pid"
    task = subprocess.Popen([sys.executable, "-c", TASK, str(fake_ffmpeg), str(pidfile)])  # noqa: S603
    ffmpeg = _wait_for_pid(pidfile)
    try:
        assert _state(ffmpeg).split()[1] == str(task.pid)
        task.kill()
        task.wait(timeout=10)
        assert _dies_within(ffmpeg, 5), "ffmpeg outlived its task process"
    finally:
        _kill(task.pid, ffmpeg)


def test_ffmpeg_is_stopped_when_the_task_process_loses_its_supervisor(fake_ffmpeg, tmp_path):
    """The process above the task dies (a Celery worker and its pool): the task process lives on, orphaned, and
    must not leave ffmpeg running."""
    pidfile = tmp_path / "ffmpeg.pid"
    supervisor = subprocess.Popen([sys.executable, "-c", SUPERVISOR, TASK, str(fake_ffmpeg), str(pidfile)])  # noqa: S603
    ffmpeg = _wait_for_pid(pidfile)
    task = int(_state(ffmpeg).split()[1])
    try:
        assert _state(task).split()[1] == str(supervisor.pid)
        supervisor.kill()
        supervisor.wait(timeout=10)
        assert _dies_within(ffmpeg, 5), "ffmpeg outlived the task's supervisor"
        assert _dies_within(task, 10), "the orphaned task process did not end"  # run_ffmpeg raised
    finally:
        _kill(task, ffmpeg)


def test_an_ffmpeg_that_runs_too_long_is_stopped(fake_ffmpeg, tmp_path):
    pidfile = tmp_path / "ffmpeg.pid"
    started = time.monotonic()
    with pytest.raises(MediaToolError, match="did not finish within 1 s"):
        run_ffmpeg([str(fake_ffmpeg), str(pidfile)], timeout=1)
    assert time.monotonic() - started < 5
    assert _dies_within(int(pidfile.read_text()), 5)


def test_redact_text_keeps_a_urls_path_and_drops_its_query_and_any_signing_parameter():
    from vodflow.media.encode.process import redact_text

    v4 = ("Error opening input file http://127.0.0.1:9000/vodflow/uploads/a%20b.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256"
          "&X-Amz-Credential=AK%2F20261207%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=0f3a.")
    assert redact_text(v4) == "Error opening input file http://127.0.0.1:9000/vodflow/uploads/a%20b.mp4."
    v2 = "from 'https://b.s3.amazonaws.com/k.mp4?AWSAccessKeyId=AK&Signature=zz%3D&Expires=1':"
    assert redact_text(v2) == "from 'https://b.s3.amazonaws.com/k.mp4':"
    assert redact_text("query X-Amz-Signature=abc&X-Amz-Security-Token=t and Signature=xyz") == \
        "query X-Amz-Signature=[redacted]&X-Amz-Security-Token=[redacted] and Signature=[redacted]"
    untouched = "-i /tmp/in.mp4 -vf select=not(mod(n\\,10)) http://host/hls/index.m3u8 -f null -"
    assert redact_text(untouched) == untouched
