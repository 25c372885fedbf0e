"""A TCP forwarder that can cut a service off: the S3 endpoint "goes down" without losing its data
(moto's server keeps everything in memory, so stopping it is not an option). It can also fail only some HTTP
requests (``fail_writes``): S3 answering 500 to writes under one prefix, while every other request passes."""

from __future__ import annotations

import contextlib
import socket
import threading


class CuttableProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.down = threading.Event()
        self.refused = 0
        self.failed_writes = 0
        self._failing_writes: bytes | None = None  # a path fragment: PUT/POST/DELETE whose path has it get a 500
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> CuttableProxy:
        self._thread.start()
        return self

    def cut(self) -> None:
        """Drop every open connection and refuse new ones until restore()."""
        self.down.set()
        self.refused = 0
        with self._lock:
            for sock in list(self._open):
                _close(sock)
            self._open.clear()

    def restore(self) -> None:
        self.down.clear()
        self._failing_writes = None

    def fail_writes(self, path_fragment: str) -> None:
        """Answer 500 InternalError to every write whose path contains ``path_fragment``, until restore().

        Open connections are dropped; from then on every request gets a connection of its own (the proxy asks
        the server to close after each), so that no write can slip through on a connection opened for a read.
        """
        self.failed_writes = 0
        self._failing_writes = path_fragment.encode()
        with self._lock:
            for sock in list(self._open):
                _close(sock)
            self._open.clear()

    def stop(self) -> None:
        self.cut()
        _close(self.listener)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down.is_set():
                self.refused += 1
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                _close(client)  # RST: "connection reset", as a dead endpoint behind a load balancer answers
                continue
            if self._failing_writes is not None:
                threading.Thread(target=self._one_request, args=(client, self._failing_writes), daemon=True).start()
                continue
            self._connect(client, b"")

    def _connect(self, client: socket.socket, head: bytes) -> None:
        try:
            server = socket.create_connection(self.upstream, timeout=10)
            server.sendall(head)
        except OSError:
            _close(client)
            return
        with self._lock:
            self._open.update((client, server))
        for source, target in ((client, server), (server, client)):
            threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _one_request(self, client: socket.socket, fragment: bytes) -> None:
        """Read the request's head: a matching write gets a 500; anything else is forwarded, with the server asked
        to close the connection after its response."""
        head = b""
        try:
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = client.recv(65536)
                if not chunk:
                    break
                head += chunk
        except OSError:
            _close(client)
            return
        request_line, _, rest = head.partition(b"\r\n")
        method, _, target = request_line.partition(b" ")
        if method in (b"PUT", b"POST", b"DELETE") and fragment in target:
            self.failed_writes += 1
            body = b"<Error><Code>InternalError</Code><Message>injected by the test</Message></Error>"
            with contextlib.suppress(OSError):
                client.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\n"
                               b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            _close(client)
            return
        headers, sep, body_start = rest.partition(b"\r\n\r\n")
        kept = [h for h in headers.split(b"\r\n") if h and not h.lower().startswith(b"connection:")]
        self._connect(client, b"\r\n".join([request_line, *kept, b"Connection: close"]) + sep + body_start)

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with self._lock:
                    self._open.discard(sock)
                _close(sock)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()
