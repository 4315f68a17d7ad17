"""A small real HTTP/1.1 server on 127.0.0.1 for the client tests (stdlib ``http.server`` in a thread).

Tests register a handler per path; a handler gets the request handler object and writes any answer,
including chunked streams with pauses, stalls (waiting on ``server.stop``) or dropped connections.
Invariant: ``close()`` wakes every stalled handler, so no test leaves a thread behind for long.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

__all__ = ["Handler", "LocalServer", "Recorded"]


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    client_port: int
    client_cert_subject: str = ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        subject = ""
        peer = getattr(self.connection, "getpeercert", None)
        if peer is not None and peer():
            subject = ",".join(f"{k}={v}" for rdn in peer()["subject"] for k, v in rdn)
        self.server.owner.record(
            Recorded(
                self.command,
                parts.path,
                parse_qs(parts.query),
                dict(self.headers.items()),
                body,
                self.client_address[1],
                subject,
            )
        )
        route = self.server.owner.routes.get(parts.path)
        if route is None:
            self.send_json(
                404,
                {
                    "kind": "Status",
                    "status": "Failure",
                    "reason": "NotFound",
                    "message": f"the server could not find {parts.path}",
                    "code": 404,
                },
            )
            return
        route(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    # -- answer helpers --------------------------------------------------------------------------

    def send_body(
        self, status: int, body: bytes, content_type: str = "application/json", headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self.send_body(status, orjson.dumps(obj), headers=headers)

    def start_chunked(self, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def stall(self, seconds: float = 30.0) -> None:
        """Keep the connection open and silent until the server closes (or ``seconds`` pass)."""
        self.server.owner.stop.wait(seconds)
        self.close_connection = True

    def drop(self) -> None:
        """Close the connection without answering."""
        self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a handler idling on a kept-alive connection must not hold up close()
    owner: LocalServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # failed handshakes and dropped peers are what several tests provoke; stay quiet


class LocalServer:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        """``tls``: serve HTTPS with this server-side context (the handshake runs in the handler thread)."""
        self.routes: dict[str, Callable[[Handler], None]] = {}
        self.requests: list[Recorded] = []
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.owner = self
        self.scheme = "https" if tls else "http"
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True, do_handshake_on_connect=False)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="local-http", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{self.scheme}://{host}:{port}"

    def record(self, request: Recorded) -> None:
        with self._lock:
            self.requests.append(request)

    def requests_to(self, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def route(self, path: str) -> Callable[[Callable[[Handler], None]], Callable[[Handler], None]]:
        def register(fn: Callable[[Handler], None]) -> Callable[[Handler], None]:
            self.routes[path] = fn
            return fn

        return register

    def json(self, path: str, obj: Any, status: int = 200) -> None:
        """Answer ``path`` with a fixed JSON document."""
        self.routes[path] = lambda h: h.send_json(status, obj)

    def sequence(self, path: str, answers: list[Callable[[Handler], None]]) -> None:
        """Answer successive requests to ``path`` with successive handlers (the last one repeats)."""
        remaining = list(answers)

        def answer(handler: Handler) -> None:
            with self._lock:
                fn = remaining.pop(0) if len(remaining) > 1 else remaining[0]
            fn(handler)

        self.routes[path] = answer

    def close(self) -> None:
        self.stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
