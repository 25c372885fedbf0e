"""Real servers on loopback that tests send to: an HTTP webhook receiver and a bare TCP listener.

The receiver answers with scripted statuses (500 then 200, a redirect, …) and records every request as sent.
The listener only counts connections: proof that a refused destination never saw a packet.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """``answers``: statuses for successive requests (the last one repeats); ``location`` for a 3xx."""

    answers: list[int] = field(default_factory=lambda: [200])
    location: str = ""
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append(Received(self.path, dict(self.headers.items()), body))
                index = min(len(receiver.received), len(receiver.answers)) - 1
                status = receiver.answers[index]
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/vodflow"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Listener:
    """A TCP socket on ``host`` that accepts and counts connections and never answers (it holds them open)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.held: list[socket.socket] = []
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            self.held.append(conn)

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=2)
        for conn in self.held:
            conn.close()
        self.sock.close()


class Trickler:
    """An HTTP receiver that reads the request, then answers one byte every ``interval`` seconds: each byte in
    time for any per-socket timeout longer than ``interval``, the whole answer after minutes. The first
    ``slow_requests`` requests are answered so (all of them by default), later ones at once; with ``slow_if``,
    only requests whose body it accepts are slow (and counted), the others answered at once. It keeps each
    request's line (path and query as sent) and body."""

    ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

    def __init__(self, interval: float = 9.0, host: str = "127.0.0.1", slow_requests: int | None = None,
                 slow_if: Callable[[bytes], bool] | None = None) -> None:
        self.interval = interval
        self.slow_requests = slow_requests
        self.slow_if = slow_if
        self.slow_seen = 0
        self.request_lines: list[str] = []
        self.bodies: list[bytes] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}/hooks/slow"
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def requests(self) -> int:
        return len(self.request_lines)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self._conns.append(conn)
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        data = b""
        try:
            conn.settimeout(5)
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            length = next((int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length")),
                          0)
            while len(body) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                body += chunk
            self.request_lines.append(lines[0])
            self.bodies.append(body)
            if self.slow_if is not None and not self.slow_if(body):
                conn.sendall(self.ANSWER)
                return
            self.slow_seen += 1
            if self.slow_requests is not None and self.slow_seen > self.slow_requests:
                conn.sendall(self.ANSWER)
                return
            for byte in self.ANSWER:
                if self._stop.wait(self.interval):
                    return
                conn.sendall(bytes([byte]))
        except OSError:
            return
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=2)
        for conn in self._conns:
            conn.close()
        self.sock.close()
