"""Start and stop a local Airflow stack (and a local S3 endpoint) for the demo, the tests and the bench.

Every process starts in a session of its own; stopping kills every process still in that session (found in
/proc), so Airflow's task processes and their ffmpeg children go too, and nothing that we did not start is
touched. Configuration comes from the env templates in ``config/``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import requests

from vodflow.client import AirflowClient

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "config"
USERS = {"admin": "admin", "viewer": "viewer"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _session_members(sid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == sid:  # fields after the command: state ppid pgrp session ...
            members.append(int(entry.name))
    return members


class ManagedProcess:
    """A command in its own session, with its output in a log file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name, self.command, self.env, self.log_path = name, command, env, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
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
            members = _session_members(sid)
            if not members:
                break
            for pid in members:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and _session_members(sid):
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

    def __init__(self, state_dir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        bin_dir = Path(sys.executable).parent
        self.process = ManagedProcess("s3", [str(bin_dir / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                                      dict(os.environ), state_dir / "logs" / "s3.log")

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


class AirflowStack:
    """api-server, scheduler, dag-processor (and what else ``components`` names) for one state directory."""

    def __init__(self, state_dir: Path, template: str = "embedded.env", values: dict[str, str] | None = None,
                 components: Iterable[str] = ("api-server", "scheduler", "dag-processor"),
                 extra_env: dict[str, str] | None = None) -> None:
        self.state_dir = state_dir.resolve()
        self.api_port = int((values or {}).get("API_PORT") or free_port())
        self.values = {
            "STATE_DIR": str(self.state_dir),
            "REPO": str(REPO),
            "API_PORT": str(self.api_port),
            # Enough executor slots for every rendition of a default ladder plus thumbnails at once.
            "PARALLELISM": str(max(8, (os.cpu_count() or 2) + 2)),
            "FERNET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "JWT_SECRET": secrets.token_urlsafe(32),
            "S3_SECRET": "vodflow-local",
            **(values or {}),
        }
        self.config = render_env(CONFIG_DIR / template, self.values)
        self.env = {**os.environ, **self.config, **(extra_env or {})}
        bin_dir = str(Path(sys.executable).parent)
        self.env["PATH"] = bin_dir + os.pathsep + self.env.get("PATH", "")  # Airflow spawns `airflow` from PATH
        self.components = list(components)
        self.processes: list[ManagedProcess] = []
        self.base_url = f"http://127.0.0.1:{self.api_port}"

    def _airflow(self, *args: str) -> list[str]:
        return [str(Path(sys.executable).parent / "airflow"), *args]

    def prepare(self) -> None:
        """Create the state directory, the users' passwords, the metadata DB and the catalog schema."""
        for sub in ("airflow", "logs", "scratch"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        passwords = self.state_dir / "passwords.json"
        if not passwords.exists():
            passwords.write_text(json.dumps(USERS) + "\n")
        self.run_cli("db", "migrate")
        self.run_cli_module("vodflow.cli", "db", "migrate")

    def run_cli(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run(self._airflow(*args), env=self.env, capture_output=True, text=True,  # noqa: S603
                                timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result.stdout

    def run_cli_module(self, module: str, *args: str, timeout: float = 120) -> str:
        result = subprocess.run([sys.executable, "-m", module, *args], env=self.env, capture_output=True,  # noqa: S603
                                text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{module} {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result.stdout

    def start(self, timeout: float = 120.0) -> AirflowStack:
        for component in self.components:
            command = self._airflow(*component.split())
            name = component.replace(" ", "-")
            self.processes.append(ManagedProcess(name, command, self.env, self.state_dir / "logs" / f"{name}.log")
                                  .start())
        api = next((p for p in self.processes if p.name == "api-server"), None)
        _wait_http(f"{self.base_url}/api/v2/monitor/health", timeout, "Airflow api-server", api)
        return self

    def client(self, username: str = "admin") -> AirflowClient:
        return AirflowClient(self.base_url, username, USERS[username])

    def check_alive(self) -> None:
        dead = [p for p in self.processes if not p.alive]
        if dead:
            raise RuntimeError("; ".join(f"{p.name} exited:\n{p.tail()}" for p in dead))

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()

    def clean(self) -> None:
        shutil.rmtree(self.state_dir, ignore_errors=True)
