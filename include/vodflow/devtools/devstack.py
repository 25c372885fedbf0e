"""Start and stop a local Airflow stack (and a local S3 endpoint) for the demo, the tests and the bench.

Every process starts in a session of its own; stopping kills every process still in that session (found in
/proc), so Airflow's task processes and their ffmpeg children go too, and nothing that we did not start is
touched. Configuration comes from the env templates in ``config/``.

Airflow's scheduler, dag-processor and triggerer exit when their database goes away (a Postgres restart) and
expect a supervisor to start them again — docker compose's ``restart: always`` in the full stack. Here
``AirflowStack`` is that supervisor: a component that exits is started again, with a growing delay while it
keeps dying right after start (the database still down, a bad setting), as docker does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import string
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from vodflow.devtools.client import AirflowClient
from vodflow.devtools.stackstate import stack_secrets
from vodflow.priority import TRANSCODE_POOL

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[3]
CONFIG_DIR = REPO / "config"
# Local stacks only (never a deployment): user -> (password, FAB role).
# "app": a service account as an app signs in (role User: may trigger, is rate limited; Admin is not).
USERS = {"admin": ("admin", "Admin"), "viewer": ("viewer", "Viewer"), "app": ("app", "User")}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def session_members(sid: int) -> list[int]:
    """Live processes of session ``sid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields after the command: state ppid pgrp session ...; a zombie is already dead, only unreaped
        if int(fields[3]) == sid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


class ManagedProcess:
    """A command in its own session, with its output in a log file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name, self.command, self.env, self.log_path = name, command, env, log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self) -> ManagedProcess:
        self.started_at = time.monotonic()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - fixed argument lists
                self.command, env=self.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 15.0) -> None:
        if self.proc is None:
            return
        sid = self.proc.pid
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            members = session_members(sid)
            if not members:
                break
            for pid in members:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and session_members(sid):
                if self.proc.poll() is None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self.proc.wait(timeout=0.2)
                else:
                    time.sleep(0.2)
        if self.proc.poll() is None:
            self.proc.wait(timeout=5)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _wait_http(url: str, timeout: float, what: str, process: ManagedProcess | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and not process.alive:
            raise RuntimeError(f"{what} exited during start-up:\n{process.tail()}")
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{what} did not answer at {url} within {timeout:.0f} s"
                       + (f":\n{process.tail()}" if process else ""))


class LocalS3:
    """moto's standalone S3 server on a free loopback port: a real HTTP endpoint for the demo and tests."""

    def __init__(self, state_dir: Path, port: int | None = None, cpus: str | None = None) -> None:
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        command = [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)]
        if cpus is not None:
            command = ["taskset", "-c", cpus, *command]
        self.process = ManagedProcess("s3", command, dict(os.environ), state_dir / "logs" / "s3.log")

    def start(self, buckets: Iterable[str] = ()) -> LocalS3:
        self.process.start()
        _wait_http(f"{self.endpoint}/moto-api/", 30, "local S3 endpoint", self.process)
        for bucket in buckets:
            requests.put(f"{self.endpoint}/{bucket}", timeout=10).raise_for_status()
        return self

    def stop(self) -> None:
        self.process.stop(grace=5)


def render_env(template: Path, values: dict[str, str]) -> dict[str, str]:
    """KEY=VALUE lines with ${NAME} placeholders; a missing placeholder is an error, not an empty string."""
    rendered = {}
    for raw in template.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        rendered[key.strip()] = string.Template(value).substitute(values)
    return rendered


@dataclass
class Component:
    """One long-running Airflow process: ``airflow <args>`` with extra environment."""

    name: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cpus: str | None = None  # e.g. "1": pin the process and its children with taskset


# The triggerer runs deferred tasks: the upload watcher waits there without holding a worker slot.
EMBEDDED_COMPONENTS = [Component("api-server", ["api-server"]), Component("scheduler", ["scheduler"]),
                       Component("dag-processor", ["dag-processor"]), Component("triggerer", ["triggerer"])]


def worker_hostname() -> str:
    """``[core] hostname_callable`` for local stacks: each worker process reports its own name."""
    return os.environ.get("VODFLOW_WORKER_NAME") or socket.getfqdn()


def celery_worker(name: str, queues: str, concurrency: int) -> Component:
    return Component(name, ["celery", "worker", "--queues", queues, "--concurrency", str(concurrency),
                            "--celery-hostname", f"{name}@%h", "--without-mingle", "--without-gossip"],
                     {"VODFLOW_WORKER_NAME": name, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())})


# Restart policy: a component that exits is started again after RESTART_DELAYS[n] seconds, n = how many times
# in a row it died within CRASH_LOOP_SECONDS of starting (capped at the last delay).
RESTART_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)
CRASH_LOOP_SECONDS = 60.0


class AirflowStack:
    """Airflow's processes for one state directory, configured from an env template in ``config/``."""

    def __init__(self, state_dir: Path, template: str = "embedded.env", values: dict[str, str] | None = None,
                 components: Iterable[Component] = EMBEDDED_COMPONENTS,
                 extra_env: dict[str, str] | None = None, supervise: bool = True,
                 secrets_from: Path | None = None) -> None:
        self.state_dir = state_dir.resolve()
        self.supervise = supervise
        self.restarts: dict[str, int] = {}  # component -> times the supervisor restarted it
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        self.api_port = int((values or {}).get("API_PORT") or free_port())
        self.values = {
            "STATE_DIR": str(self.state_dir),
            "REPO": str(REPO),
            "API_PORT": str(self.api_port),
            # Enough executor slots for a few videos at once (a prepare, a transcode and a publish each).
            "PARALLELISM": str(max(8, (os.cpu_count() or 2) + 2)),
            **stack_secrets(self.state_dir, secrets_from),  # FERNET_KEY, JWT_SECRET: kept in the state dir
            "BIND_HOST": "127.0.0.1",
            "S3_ACCESS_KEY": "vodflow",
            "S3_SECRET": "vodflow-local",
            "BUCKET": "vodflow",
            "HEARTBEAT_TIMEOUT": "300",
            **(values or {}),
        }
        self.values.setdefault("TRANSCODE_SLOTS", self.values["PARALLELISM"])  # LocalExecutor: any of its slots
        self.values.setdefault("API_URL", f"http://127.0.0.1:{self.api_port}")  # what workers and links use
        self.config = render_env(CONFIG_DIR / template, self.values)
        self.env = {**os.environ, **self.config, **(extra_env or {})}
        bin_dir = str(Path(sys.executable).parent)
        self.env["PATH"] = bin_dir + os.pathsep + self.env.get("PATH", "")  # Airflow spawns `airflow` from PATH
        self.components = list(components)
        self.processes: dict[str, ManagedProcess] = {}
        self.base_url = f"http://127.0.0.1:{self.api_port}"

    @property
    def fab(self) -> bool:
        return "fab_auth_manager" in self.config.get("AIRFLOW__CORE__AUTH_MANAGER", "")

    def _airflow(self, *args: str) -> list[str]:
        return [str(Path(sys.executable).parent / "airflow"), *args]

    def prepare(self) -> None:
        """Create the state directory, the metadata DB, the users and the catalog schema."""
        for sub in ("airflow", "logs", "scratch"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        passwords = self.state_dir / "passwords.json"
        if not passwords.exists():
            passwords.write_text(json.dumps({user: password for user, (password, _) in USERS.items()}) + "\n")
        self.run_cli("db", "migrate")
        if self.fab:
            self.run_cli("fab-db", "migrate")
            for user, (password, role) in USERS.items():
                self.run_cli("users", "create", "--username", user, "--password", password, "--role", role,
                             "--email", f"{user}@vodflow.invalid", "--firstname", user, "--lastname", "vodflow")
        self.run_cli_module("vodflow.cli", "db", "migrate")
        # The transcode items wait for this pool's slots in the scheduler, which gives the next free one to the
        # highest priority (vodflow.priority): as many slots as the transcode workers run at once.
        self.run_cli("pools", "set", TRANSCODE_POOL, self.values["TRANSCODE_SLOTS"],
                     "transcode_video's work items: one slot per transcode worker process")

    def run_cli(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run(self._airflow(*args), env=self.env, capture_output=True, text=True,  # noqa: S603
                                timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"airflow {args[0]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result.stdout

    def run_cli_module(self, module: str, *args: str, timeout: float = 120) -> str:
        result = subprocess.run([sys.executable, "-m", module, *args], env=self.env, capture_output=True,  # noqa: S603
                                text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{module} {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result.stdout

    def start_component(self, component: Component) -> ManagedProcess:
        command = self._airflow(*component.args)
        if component.cpus is not None:
            command = ["taskset", "-c", component.cpus, *command]
        with self._lock:
            process = ManagedProcess(component.name, command, {**self.env, **component.env},
                                     self.state_dir / "logs" / f"{component.name}.log").start()
            self.processes[component.name] = process
        return process

    def start(self, timeout: float = 120.0) -> AirflowStack:
        for component in self.components:
            self.start_component(component)
        if "api-server" in self.processes:  # not for workers joining another machine's stack
            _wait_http(f"{self.base_url}/api/v2/monitor/health", timeout, "Airflow api-server",
                       self.processes.get("api-server"))
        if self.supervise and self._supervisor is None:
            self._stopping.clear()
            self._supervisor = threading.Thread(target=self._supervise, name="vodflow-supervisor", daemon=True)
            self._supervisor.start()
        return self

    def restart(self, name: str) -> ManagedProcess:
        """Stop a component (its whole session) and start it again, as an operator restarting a service."""
        with self._lock:
            self.processes[name].stop()
            return self.start_component(self.component(name))

    def wait_restarted(self, name: str, after: int, timeout: float = 60.0) -> ManagedProcess:
        """Wait until the supervisor has restarted ``name`` more than ``after`` times in all."""
        deadline = time.monotonic() + timeout
        while self.restarts.get(name, 0) <= after:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} was not restarted within {timeout:.0f} s")
            time.sleep(0.2)
        return self.processes[name]

    def _supervise(self) -> None:
        quick_deaths: dict[str, int] = {}
        due: dict[str, float] = {}  # component -> when to start it again
        while not self._stopping.wait(0.5):
            with self._lock:
                if self._stopping.is_set():
                    return
                for name, process in list(self.processes.items()):
                    if process.alive:
                        continue
                    if name not in due:
                        quick = time.monotonic() - process.started_at < CRASH_LOOP_SECONDS
                        quick_deaths[name] = quick_deaths.get(name, 0) + 1 if quick else 0
                        delay = RESTART_DELAYS[min(quick_deaths[name], len(RESTART_DELAYS) - 1)]
                        log.warning("%s exited (code %s); restarting it in %.0f s%s", name,
                                    process.proc.returncode if process.proc else None, delay,
                                    f" (died {quick_deaths[name]} times in a row right after start)"
                                    if quick_deaths[name] else "")
                        process.stop(grace=5)  # whatever is left of its session (task processes, ffmpeg)
                        due[name] = time.monotonic() + delay
                    elif time.monotonic() >= due[name]:
                        del due[name]
                        self.start_component(self.component(name))
                        self.restarts[name] = self.restarts.get(name, 0) + 1

    def component(self, name: str) -> Component:
        return next(c for c in self.components if c.name == name)

    def client(self, username: str = "admin") -> AirflowClient:
        return AirflowClient(self.base_url, username, USERS[username][0])

    def check_alive(self) -> None:
        """Raise if a component exited and no supervisor will start it again."""
        with self._lock:
            dead = [p for p in self.processes.values() if not p.alive and self._supervisor is None]
        if dead:
            raise RuntimeError("; ".join(f"{p.name} exited:\n{p.tail()}" for p in dead))

    def stop(self) -> None:
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=30)
            self._supervisor = None
        with self._lock:
            for process in reversed(list(self.processes.values())):
                process.stop()
            self.processes.clear()

    def clean(self) -> None:
        shutil.rmtree(self.state_dir, ignore_errors=True)


def max_active_videos(transcode_slots: int) -> int:
    """Runs of ``transcode_video`` open at once for a stack of ``transcode_slots``: each slot's video plus two
    prepared ahead (a prepare and its hops take 2-3 s; two spare cover two slots freed at once). Not more: the
    scheduler re-examines every open run on every loop, so a run that can only wait for the pool costs its CPU
    (bench/load.py, bench/control_plane.py)."""
    return max(4, transcode_slots + 2)


def celery_stack(state_dir: Path, *, airflow_db_url: str, redis_url: str, catalog_conn: str, s3_endpoint: str,
                 s3_access_key: str = "vodflow", s3_secret: str = "vodflow-local", bucket: str = "vodflow",
                 transcode_workers: int = 1, transcode_concurrency: int = 4, default_concurrency: int = 4,
                 heartbeat_timeout: int = 300, triggerer: bool = True, api_port: int | None = None,
                 bind_host: str = "127.0.0.1", advertise_host: str = "127.0.0.1", workers_only: bool = False,
                 api_url: str | None = None, secrets_from: Path | None = None) -> AirflowStack:
    """Airflow on CeleryExecutor against existing Postgres/Redis: one `default` worker, N `transcode` workers;
    ``workers_only``: just those, joining the stack at ``api_url`` with its secrets (``secrets_from``)."""
    components = [] if workers_only else [c for c in EMBEDDED_COMPONENTS if triggerer or c.name != "triggerer"]
    if not workers_only:
        components.append(celery_worker("default-1", "default", default_concurrency))
    components += [celery_worker(f"transcode-{i}", "transcode", transcode_concurrency)
                   for i in range(1, transcode_workers + 1)]
    values = {"AIRFLOW_DB_URL": airflow_db_url, "REDIS_URL": redis_url, "CATALOG_CONN": catalog_conn,
              "S3_ENDPOINT": s3_endpoint, "S3_ACCESS_KEY": s3_access_key, "S3_SECRET": s3_secret, "BUCKET": bucket,
              "HEARTBEAT_TIMEOUT": str(heartbeat_timeout), "BIND_HOST": bind_host,
              "MAX_ACTIVE_VIDEOS": str(max_active_videos(transcode_workers * transcode_concurrency)),
              "TRANSCODE_SLOTS": str(transcode_workers * transcode_concurrency)}
    port = api_port or free_port()
    values.update(API_PORT=str(port), API_URL=api_url or f"http://{advertise_host}:{port}")
    return AirflowStack(state_dir, "celery.env", values, components, secrets_from=secrets_from)
