"""Worker-local scratch space.

Renditions of one video that land on the same worker share one downloaded copy of the source: the first
task downloads it under a file lock, each user leaves a marker, and the last one out deletes it. Markers of
processes that died (a killed task) do not count, so a crash cannot pin a source on disk forever. Work
directories carry their owner's host and PID for the same reason: a later task removes those of dead owners.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

SOURCE_NAME = "source"
_HOST = socket.gethostname().replace("-", "_")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive lock on ``directory``, robust against the directory being deleted while we waited."""
    while True:
        directory.mkdir(parents=True, exist_ok=True)
        lock_path = directory / ".lock"
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if os.path.exists(lock_path) and os.fstat(lock.fileno()).st_ino == os.stat(lock_path).st_ino:
                    yield
                    return
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _live_users(directory: Path) -> list[Path]:
    """Markers of processes that may still use the copy. Another host's processes cannot be checked: they count."""
    users = []
    for marker in directory.glob("user-*"):
        _, host, pid, _ = marker.name.rsplit("-", 3)
        if not _owner_is_dead(host, pid):
            users.append(marker)
        else:
            marker.unlink(missing_ok=True)
    return users


def _owner_is_dead(host: str, pid: str) -> bool:
    return host == _HOST and pid.isdigit() and not _pid_alive(int(pid))


def work_dir(parent: Path, name: str) -> Path:
    """A fresh ``<name>-<host>-<pid>`` directory under ``parent``; leftovers of dead owners are removed first."""
    parent.mkdir(parents=True, exist_ok=True)
    for old in parent.glob(f"{name}-*"):
        _, host, pid = old.name.rsplit("-", 2)
        if _owner_is_dead(host, pid):
            shutil.rmtree(old, ignore_errors=True)
    path = parent / f"{name}-{_HOST}-{os.getpid()}"
    path.mkdir()
    return path


@contextlib.contextmanager
def shared_source(directory: Path, fetch: Callable[[str], object]) -> Iterator[str]:
    """Yield the path of the source copy in ``directory``, fetching it first if no one has yet."""
    marker = directory / f"user-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    path = directory / SOURCE_NAME
    with _locked(directory):
        if not path.exists():
            partial = directory / f".{SOURCE_NAME}.partial"
            fetch(str(partial))
            os.replace(partial, path)
        marker.touch()
    try:
        yield str(path)
    finally:
        with _locked(directory):
            marker.unlink(missing_ok=True)
            if not _live_users(directory):
                shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def encoder_slot(scratch_root: Path) -> Iterator[int]:
    """Hold a slot among this machine's running encodes; yields how many run now, this one included.

    Each encode holds an exclusive lock on a file of its own under ``<scratch>/.encoders``; a file whose lock can
    be taken belongs to an encode that ended (or died) and is removed. The count lets an encode size its threads
    to its share of the machine instead of every encode using every core.
    """
    directory = scratch_root / ".encoders"
    directory.mkdir(parents=True, exist_ok=True)
    mine = directory / f"{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    with open(mine, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        try:
            running = 1
            for other in directory.iterdir():
                if other == mine:
                    continue
                try:
                    with open(other) as probe:
                        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        other.unlink(missing_ok=True)  # its encode is over
                except BlockingIOError:
                    running += 1
                except FileNotFoundError:
                    pass
            yield running
        finally:
            mine.unlink(missing_ok=True)


def threads_per_encoder(running: int, configured: int) -> int:
    """``configured`` when set; else 0 (x264 decides: every core) for a lone encode, or this encode's share of
    the cores when several run at once (x264's own threads on top of theirs cost CPU and gain nothing)."""
    if configured or running <= 1:
        return configured
    return max(1, len(os.sched_getaffinity(0)) // running)
