"""A plain-HTTP reverse proxy in front of the real apiserver that can inject raw lines into watch
streams, or rewrite what it forwards: how the tests feed a real informer malformed events, events
the apiserver would not send (e.g. a bookmark from the future), broken LIST bodies or streams cut
mid-object. It counts the requests it forwards by kind, so a test can bound the retries. It
authenticates upstream as admin, so the client under test talks plain HTTP to it with no
credentials."""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson
import urllib3

from informers.testing import ControlPlane


class Cut(bytes):
    """A rewrite result after which the answer ends: a watch line sent without its newline, or a
    LIST body sent under a ``Content-Length`` of the original body (a declared body cut short)."""


@dataclass(frozen=True)
class Reply:
    """An answer the proxy sends instead of forwarding the request (see ``InjectingProxy.answer``)."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


class Hold(bytes):
    """A rewrite result sent without its newline, after which the answer sends nothing more but
    stays open until the client hangs up: a line that never ends."""


def request_kind(method: str, path: str) -> str:
    """``list`` / ``watch`` / ``stream`` (a watch with ``sendInitialEvents``) for GETs, else the
    method in lower case."""
    if method != "GET":
        return method.lower()
    query = parse_qs(urlsplit(path).query)
    if query.get("watch") == ["true"]:
        return "stream" if query.get("sendInitialEvents") == ["true"] else "watch"
    return "list"


class InjectingProxy:
    def __init__(self, plane: ControlPlane) -> None:
        assert plane.workdir is not None
        certs = plane.workdir / "certs"
        self.upstream = plane.server
        self.pool = urllib3.PoolManager(
            ca_certs=str(plane.ca_file),
            cert_file=str(certs / "admin.crt"),
            key_file=str(certs / "admin.key"),
            maxsize=8,
        )
        self.pending: deque[bytes] = deque()
        self.injected = 0
        self.rewrite: Callable[[bytes], bytes] | None = None
        """Applied to every whole line of a watch stream while set (returns the line to send)."""
        self.rewrite_stream: Callable[[str, bytes], bytes] | None = None
        """Like ``rewrite`` but also given the request's path; a ``Cut`` result ends the stream."""
        self.rewrite_body: Callable[[str, bytes], bytes] | None = None
        """Applied to the whole body of every other GET answer (path, body); see ``Cut``."""
        self.answer: Callable[[str, str], Reply | None] | None = None
        """Given each request's kind and path; a ``Reply`` is sent instead of forwarding it."""
        self.rewritten = 0
        self.requests: Counter[str] = Counter()
        """Requests forwarded, by ``request_kind``."""
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # close-delimited bodies: no re-chunking needed

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                proxy._forward(self)

            def do_POST(self) -> None:
                proxy._forward(self)

            def do_PUT(self) -> None:
                proxy._forward(self)

            def do_PATCH(self) -> None:
                proxy._forward(self)

            def do_DELETE(self) -> None:
                proxy._forward(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> InjectingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.pool.clear()

    def inject(self, *lines: bytes) -> None:
        """Queue raw lines for the next watch stream, written at the next line boundary."""
        with self._lock:
            self.pending.extend(lines)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self.requests)

    def kubeconfig(self, directory: Path) -> Path:
        path = directory / "injecting-proxy.kubeconfig"
        path.write_bytes(
            orjson.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "p", "cluster": {"server": self.url}}],
                    "users": [{"name": "p", "user": {}}],
                    "contexts": [{"name": "p", "context": {"cluster": "p", "user": "p"}}],
                    "current-context": "p",
                }
            )
        )
        return path

    def _rewritten(self, path: str, line: bytes) -> bytes:
        out = line
        if self.rewrite is not None:
            out = self.rewrite(out)
        if self.rewrite_stream is not None:
            out = self.rewrite_stream(path, out)
        if out != line or isinstance(out, Cut | Hold):
            with self._lock:
                self.rewritten += 1
        return out

    def _forward(self, handler: BaseHTTPRequestHandler) -> None:
        method = handler.command
        kind = request_kind(method, handler.path)
        with self._lock:
            self.requests[kind] += 1
        answer = self.answer
        reply = answer(kind, handler.path) if answer is not None else None
        if reply is not None:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", reply.content_type)
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(reply.body)
            return
        watching = kind in ("watch", "stream")
        length = int(handler.headers.get("Content-Length") or 0)
        headers = {"Content-Type": handler.headers.get("Content-Type", "application/json")}
        upstream = self.pool.request(
            method,
            self.upstream + handler.path,
            body=handler.rfile.read(length) if length else None,
            headers=headers,
            preload_content=False,
            retries=False,
            timeout=urllib3.Timeout(connect=5, read=None if watching else 60),
        )
        try:
            handler.send_response(upstream.status)
            handler.send_header("Content-Type", upstream.headers.get("Content-Type", "application/json"))
            rewrite_body = self.rewrite_body
            if not watching and method == "GET" and rewrite_body is not None:
                body = upstream.read()
                out = rewrite_body(handler.path, body)
                if out != body:
                    with self._lock:
                        self.rewritten += 1
                if isinstance(out, Cut):
                    handler.send_header("Content-Length", str(len(body)))
                handler.end_headers()
                handler.wfile.write(out)
                return
            handler.end_headers()
            partial = b""
            for chunk in upstream.stream(65536):
                rewriting = watching and (self.rewrite is not None or self.rewrite_stream is not None)
                if rewriting or partial:
                    *lines, partial = (partial + chunk).split(b"\n")
                    out_lines = [self._rewritten(handler.path, line) for line in lines]
                    for n, line in enumerate(out_lines):
                        if isinstance(line, Cut | Hold):  # the stream ends here, mid-line
                            upstream.close()  # never hand a half-read answer back to the pool
                            handler.wfile.write(b"".join(x + b"\n" for x in out_lines[:n]) + line)
                            handler.wfile.flush()
                            if isinstance(line, Hold):
                                handler.connection.recv(1)  # until the client hangs up
                            return
                    chunk = b"".join(line + b"\n" for line in out_lines)
                handler.wfile.write(chunk)
                if watching and chunk.endswith(b"\n"):
                    with self._lock:
                        lines = list(self.pending)
                        self.pending.clear()
                    for line in lines:
                        handler.wfile.write(line + b"\n")
                        self.injected += 1
                handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, urllib3.exceptions.HTTPError):  # the client hung up
            pass
        finally:
            upstream.release_conn()
