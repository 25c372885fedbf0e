"""Workers notice a finished task at once, without heartbeating every second.

Airflow's task supervisor (``airflow.sdk.execution_time.supervisor``) learns that its task process ended from
the process's sockets reaching EOF, then reaps it with ``wait(timeout=0)``. The kernel closes a dying process's
sockets *before* the process can be reaped, so that ``wait`` often comes too early; the supervisor's ``select``
then has nothing left to watch and sleeps until its next heartbeat, ``[workers] min_heartbeat_interval``. The
worker's slot sits idle that long after every task: up to 5 s with the default, which is why the stack used to
run with 1 s — one heartbeat per running task per second (an HTTP call to the API server and a database write;
the API server's CPU per second of a soak halved without them, 0.094 → 0.044).

``install()`` also registers a pidfd of the task process with the supervisor's selector: it becomes readable
the moment the process can be reaped, so the supervisor wakes at exit whatever the heartbeat interval. Linux
5.3+ (``os.pidfd_open``); elsewhere, or on an Airflow whose supervisor lacks the hook, nothing changes.
Called from ``vodflow.worker.celery_config`` in the Celery worker's main process, before it forks its pool.
"""

from __future__ import annotations

import io
import os
from typing import Any

_INSTALLED = "_vodflow_exit_wakeup"


def _reaped_at_exit(pidfd: io.FileIO) -> bool:
    """The selector's handler for the pidfd: readable means the process ended; nothing more to read."""
    return False


def install() -> bool:
    """Wrap the supervisor's pipe registration once; returns whether the wake-up is in place."""
    if not hasattr(os, "pidfd_open"):
        return False
    try:
        import selectors

        from airflow.sdk.execution_time.supervisor import WatchedSubprocess
    except ImportError:
        return False
    register = getattr(WatchedSubprocess, "_register_pipe_readers", None)
    if register is None or getattr(register, _INSTALLED, False):
        return register is not None

    def register_with_exit_wakeup(self: Any, *args: Any, **kwargs: Any) -> None:
        register(self, *args, **kwargs)
        try:
            # A FileIO owns the fd: closed by the supervisor after the event, or when the supervisor is collected.
            pidfd = io.FileIO(os.pidfd_open(self.pid), "r", closefd=True)
        except OSError:  # the process is already gone, or no pidfd support: the heartbeat wait still works
            return
        # Its close handler only unregisters it: the supervisor's socket bookkeeping must not see it.
        self.selector.register(pidfd, selectors.EVENT_READ, (_reaped_at_exit, self.selector.unregister))

    setattr(register_with_exit_wakeup, _INSTALLED, True)
    WatchedSubprocess._register_pipe_readers = register_with_exit_wakeup  # type: ignore[method-assign]
    return True
