"""Real servers on loopback that tests send to: an HTTP webhook receiver and a bare TCP listener.

The receiver answers with scripted statuses (500 then 200, a redirect, …) and records every request as sent.
The listener only counts connections: proof that a refused destination never saw a packet.
"""

from __future__ import annotations

import socket
import threading
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
