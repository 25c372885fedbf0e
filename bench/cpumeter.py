"""CPU accounting of a running stack (`CpuMeter`: what a stack's processes cost in CPU seconds, read from
/proc; `stack_meter`: one for a bench stack and its S3 endpoint, Postgres databases and Redis)."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from benchstack import PG_ADMIN, REDIS_URL

from vodflow.devtools.devstack import AirflowStack, LocalS3

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcTimes:
    """One process as /proc/<pid>/stat shows it; times in clock ticks."""

    pid: int
    ppid: int
    sid: int
    start: int  # clock ticks after boot: with the pid, names this process even once the pid is reused
    own: int  # utime + stime: every thread of it, living or exited
    reaped: int  # cutime + cstime: the children it has waited for, each with what it had reaped itself

    @property
    def key(self) -> tuple[int, int]:
        return self.pid, self.start


def read_proc(pid: int | str) -> ProcTimes | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    f = stat[stat.rindex(")") + 2:].split()  # state ppid pgrp session ... utime(11) stime cutime cstime ...
    return ProcTimes(int(pid), int(f[1]), int(f[3]), int(f[19]), int(f[11]) + int(f[12]), int(f[13]) + int(f[14]))


def scan_procs() -> dict[int, ProcTimes]:
    """Every process of the machine (zombies too: their times are theirs until their parent reaps them)."""
    procs = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (proc := read_proc(entry.name)) is not None:
            procs[proc.pid] = proc
    return procs


@dataclass(frozen=True)
class _Track:
    label: str
    counts_reaped: bool  # its cutime/cstime count: its children are ours too (not so for the postmaster's)


@dataclass
class CpuUsage:
    """CPU seconds (user + system) of a stack's processes over a window, by component."""

    wall: float = 0.0
    by_label: dict[str, float] = field(default_factory=dict)
    # The whole Postgres server over the same window (every database, every client, this bench's too): to
    # compare with what the stack's share ("postgres" + "postgres-shared") was. None: no Postgres watched.
    postgres_server: float | None = None

    @property
    def seconds(self) -> float:
        return sum(self.by_label.values())

    def breakdown(self) -> str:
        parts = [f"{label} {seconds:.2f}" for label, seconds in sorted(self.by_label.items(), key=lambda x: -x[1])
                 if abs(seconds) >= 0.005]
        if self.postgres_server is not None:
            parts.append(f"[whole Postgres server {self.postgres_server:.2f}, not added]")
        return ", ".join(parts)


class CpuMeter:
    """CPU seconds (user + system) used by a stack's processes over a window, read from /proc.

    What is counted: every process of the stack's sessions (each component — api-server, scheduler,
    dag-processor, each Celery worker — and the S3 endpoint runs in a session of its own, see
    ``vodflow.devtools.devstack``; their task processes and ffmpeg children stay in it), the Redis server, the Postgres
    backends serving the stack's databases, and Postgres's shared processes (postmaster, checkpointer, WAL
    writer, ...). Not counted: this bench's process (its polling, this meter) and its children (bare ffmpeg),
    nor the backends of its own database connections (found by their client port).

    How: a process's CPU is its own utime + stime; once it exits and its parent waits for it, the kernel adds
    its total (with everything it had reaped itself) to the parent's cutime + cstime and the process is gone.
    So for a set of processes closed under reaping — every process that exits is waited for by another one
    of the set — S = sum over the set's living processes of (utime + stime + cutime + cstime) only ever grows
    by CPU used, and S(end) - S(start) is exactly the CPU used in between: nothing counted twice, nothing
    lost, however many task processes and ffmpeg runs started and ended in between, with no sampling. The
    snapshots at the two ends are taken until two reads in a row agree, so a reap during a read (the child
    read before, the parent after: twice; or the other way round: never) cannot slip in.
    The Postgres backends are reaped by the postmaster, whose cutime also holds every other database's
    backends: they count their own utime + stime only, and one that exits in the window counts what it had
    at the last sample (a sampler thread reads /proc every ``interval`` s); that loses at most ``interval``
    seconds of each such backend's CPU, and a connection opened and closed between two samples is missed
    (``CpuUsage.postgres_server``, the whole server, shows how much that could be). The same rule covers a
    stack process orphaned to init (its parent exited first): counted up to its last sample.

    Why not the whole machine's busy time from /proc/stat minus this process's own: it is exact only on an
    otherwise idle machine, and this one is shared (other users' builds and tests, the OS's own daemons) —
    all of which /proc/stat would bill to the pipeline, silently. Per-process accounting is exact where it
    matters (the encodes die inside the stack's sessions and are reaped there), names what it counts, and
    says where each second went.

    Two things counted belong to the measurement, not the pipeline: the api-server's answers to this bench's
    polling (a GET every 0.1-0.5 s), and, since Redis and Postgres's shared processes serve every client of
    this machine, whatever else uses them at the same time.
    """

    def __init__(self, roots: Callable[[], dict[int, str]], databases: Iterable[str] = (), *,
                 postgres_url: str | None = PG_ADMIN, redis_url: str | None = REDIS_URL,
                 interval: float = 0.5) -> None:
        """``roots``: the stack's sessions now, session id -> label (asked at every read: a component the
        stack restarts is a new session); ``databases``: the stack's Postgres databases."""
        self.roots = roots
        self.databases = frozenset(databases)
        self.interval = interval
        self.postmaster = _postmaster_pid(postgres_url) if postgres_url and self.databases else None
        self.redis = _redis_pid(redis_url) if redis_url else None
        self._members: dict[tuple[int, int], _Track] = {}  # once ours, ours (reparented to init, setsid)
        self._postgres: dict[tuple[int, int], _Track | None] = {}  # the postmaster's children, classified

    def idle(self, seconds: float) -> CpuUsage:
        """The stack's CPU over ``seconds`` with nothing to do: its control plane's background cost."""
        with self.window() as usage:
            time.sleep(seconds)
        return usage

    @contextmanager
    def window(self) -> Iterator[CpuUsage]:
        """Measure the block; the yielded ``CpuUsage`` is filled in when it ends."""
        usage = CpuUsage()
        started = time.monotonic()
        base, base_server = self._snapshot()
        last: dict[tuple[int, int], tuple[str, int, bool]] = {}  # key -> label, value, parent counts reaped
        self._record(base, last)
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(self.interval):
                self._record(self._tracked(scan_procs()), last)

        sampler = threading.Thread(target=sample, name="cpu-meter", daemon=True)
        sampler.start()
        try:
            yield usage
        finally:
            stop.set()
            sampler.join()
        end, end_server = self._snapshot()
        self._record(end, last)
        usage.wall = time.monotonic() - started
        totals: dict[str, int] = {}
        for key, (label, value, parent_counts) in last.items():
            if key in end:
                after = end[key][1]
            elif parent_counts:
                after = 0  # exited, reaped by a process we count: its whole total is in that one's cutime now
            else:
                after = value  # exited, reaped by a process we do not count: what it had at the last sample
            before = base[key][1] if key in base else 0
            totals[label] = totals.get(label, 0) + after - before
        usage.by_label = {label: ticks / CLOCK_TICKS for label, ticks in totals.items()}
        if base_server is not None and end_server is not None:
            usage.postgres_server = (end_server - base_server) / CLOCK_TICKS

    # key -> (track, value, parent's key)
    def _tracked(self, procs: dict[int, ProcTimes]) -> dict[tuple[int, int], tuple[_Track, int, Any]]:
        roots = self.roots()
        memo: dict[int, _Track | None] = {}
        ports: list[set[int]] = []  # this bench's client ports, read once per scan if needed

        def track(proc: ProcTimes, depth: int = 0) -> _Track | None:
            if proc.pid in memo:
                return memo[proc.pid]
            found = self._members.get(proc.key)
            if found is None:
                if proc.sid in roots:
                    found = _Track(roots[proc.sid], True)
                elif proc.pid == self.redis:
                    found = _Track("redis", True)
                elif proc.pid == self.postmaster:
                    found = _Track("postgres-shared", False)
                elif self.postmaster is not None and proc.ppid == self.postmaster:
                    found = self._postgres_child(proc, procs, ports)
                elif (parent := procs.get(proc.ppid)) is not None and depth < 64:
                    inherited = track(parent, depth + 1)
                    found = inherited if inherited is not None and inherited.counts_reaped else None
                if found is not None and self.postmaster != proc.ppid:
                    self._members[proc.key] = found
            memo[proc.pid] = found
            return found

        tracked = {}
        for proc in procs.values():
            found = track(proc)
            if found is not None:
                parent = procs.get(proc.ppid)
                tracked[proc.key] = (found, proc.own + (proc.reaped if found.counts_reaped else 0),
                                     parent.key if parent is not None else None)
        return tracked

    def _postgres_child(self, proc: ProcTimes, procs: dict[int, ProcTimes], ports: list[set[int]]) -> _Track | None:
        if proc.key in self._postgres:
            return self._postgres[proc.key]
        try:
            title = Path(f"/proc/{proc.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return None
        if not title.startswith("postgres:"):
            return None  # a backend just forked, not yet titled: decide at the next read
        words = title.split()
        client = next((m for w in words if (m := re.fullmatch(r".*\((\d+)\)|\[local\]", w))), None)
        found: _Track | None = None
        if "parallel worker for PID" in title:
            leader = procs.get(int(words[-1])) if words[-1].isdigit() else None
            found = self._postgres.get(leader.key) if leader is not None else None
        elif self.databases & set(words):  # a backend (or autovacuum worker) of one of the stack's databases
            if not ports:
                ports.append(_own_tcp_ports())
            ours = client is not None and client.group(1) is not None and int(client.group(1)) in ports[0]
            found = None if ours else _Track("postgres", False)
        elif client is None and "autovacuum worker" not in title:
            found = _Track("postgres-shared", False)  # checkpointer, WAL writer, background writer, launchers
        self._postgres[proc.key] = found
        return found

    def _snapshot(self) -> tuple[dict[tuple[int, int], tuple[_Track, int, Any]], int | None]:
        """The tracked processes, read until two reads in a row show the same processes and the same reaped
        times (no reap happened during the read); and the whole Postgres server's CPU, ticks."""
        previous = None
        for _ in range(20):
            procs = scan_procs()
            tracked = self._tracked(procs)
            signature = {key: procs[key[0]].reaped for key in tracked}
            if signature == previous:
                break
            previous = signature
        server = None
        if self.postmaster is not None:
            server = sum(p.own + p.reaped for p in procs.values()
                         if self.postmaster in (p.pid, p.ppid))
        return tracked, server

    def _record(self, tracked: dict[tuple[int, int], tuple[_Track, int, Any]],
                last: dict[tuple[int, int], tuple[str, int, bool]]) -> None:
        for key, (found, value, parent) in tracked.items():
            parent_track = tracked.get(parent)
            last[key] = (found.label, value, parent_track is not None and parent_track[0].counts_reaped)


def stack_meter(stack: AirflowStack, s3: LocalS3, catalog_url: str, interval: float = 0.5) -> CpuMeter:
    """A `CpuMeter` for a started bench stack and its S3 endpoint (and its Postgres databases and Redis, when
    it uses them)."""
    import sqlalchemy as sa

    def roots() -> dict[int, str]:
        found = {p.proc.pid: name for name, p in list(stack.processes.items()) if p.proc is not None}
        if s3.process.proc is not None:
            found[s3.process.proc.pid] = "s3"
        return found

    databases = [url.database for url in (sa.make_url(u) for u in (catalog_url, stack.values.get("AIRFLOW_DB_URL"))
                                         if u) if url.drivername.startswith("postgresql") and url.database]
    return CpuMeter(roots, databases, redis_url=stack.values.get("REDIS_URL"), interval=interval)


def _postmaster_pid(url: str) -> int | None:
    """The postmaster of the server at ``url``, if it runs in this machine's /proc (not in a container)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            backend = read_proc(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
    finally:
        engine.dispose()
    return backend.ppid if backend is not None and read_proc(backend.ppid) is not None else None


def _redis_pid(url: str) -> int | None:
    pid = redis.Redis.from_url(url).info("server").get("process_id")
    try:
        return pid if Path(f"/proc/{pid}/comm").read_text().startswith("redis") else None
    except OSError:
        return None


def _own_tcp_ports() -> set[int]:
    """Local ports of this process's TCP sockets."""
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports
