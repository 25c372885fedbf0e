"""The supervisor notices its task process exit at once, not at its next heartbeat (vodflow.worker.exit_wakeup).

Real forks through Airflow's own supervisor class: a child that exits is reaped as soon as it can be, although
the supervisor is told it may wait up to 5 s between looks. Without the wake-up, the supervisor sees the
sockets' EOF before the child can be reaped often enough (about one exit in three here) that twenty exits
cannot all be quick.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
import uuid

import structlog
from airflow.sdk.execution_time.supervisor import WatchedSubprocess

from vodflow.worker import exit_wakeup


class _Supervised(WatchedSubprocess):
    decoder = None

    def handle_requests(self, log):  # the child sends none
        while True:
            yield


def _exits_at_once() -> None:
    # Many open files widen the window between the sockets closing and the child becoming reapable (the kernel
    # closes them one after another on exit), as a real task process's do: without the wake-up, about a third
    # of these exits are noticed only after the full 5 s wait.
    devnull = os.open(os.devnull, os.O_RDONLY)
    for _ in range(min(4000, resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 100)):
        os.dup(devnull)
    os._exit(0)


def _seconds_until_reaped() -> float:
    started = time.monotonic()
    proc = _Supervised.start(target=_exits_at_once, id=uuid.uuid4(), logger=structlog.get_logger())
    while proc._service_subprocess(max_wait_time=5.0) is None:
        pass
    return time.monotonic() - started


def test_every_exit_is_noticed_within_a_second_whatever_the_heartbeat_wait() -> None:
    assert exit_wakeup.install()
    assert exit_wakeup.install()  # a second call keeps the one wrapper
    delays = [_seconds_until_reaped() for _ in range(20)]
    assert max(delays) < 1.0, delays


def test_no_descriptor_is_left_open_after_the_children() -> None:
    exit_wakeup.install()
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        _seconds_until_reaped()
    import gc

    gc.collect()
    assert len(os.listdir("/proc/self/fd")) <= before


def test_the_celery_workers_configuration_installs_it() -> None:
    """Workers load ``vodflow.worker.celery_config`` (``[celery] celery_config_options``) before forking their pool; a
    fresh interpreter, so that no other test has installed it already."""
    check = ("import vodflow.worker.celery_config\n"
             "from airflow.sdk.execution_time.supervisor import WatchedSubprocess\n"
             "assert getattr(WatchedSubprocess._register_pipe_readers, '_vodflow_exit_wakeup', False)")
    subprocess.run([sys.executable, "-c", check], check=True, timeout=120)  # noqa: S603
