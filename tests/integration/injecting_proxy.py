"""A plain-HTTP reverse proxy in front of the real apiserver that can inject raw lines into watch
streams, or rewrite the lines it forwards: how the tests feed a real watch malformed events or
events the apiserver would not send (e.g. a bookmark from the future). It authenticates upstream as admin, so
the client under test talks plain HTTP to it with no credentials."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import urllib3

from informers.testing import ControlPlane


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
        self.rewritten = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # close-delimited bodies: no re-chunking needed

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
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

    def _rewritten(self, rewrite: Callable[[bytes], bytes] | None, line: bytes) -> bytes:
        if rewrite is None:
            return line
        out = rewrite(line)
        if out != line:
            self.rewritten += 1
        return out

    def _forward(self, handler: BaseHTTPRequestHandler) -> None:
        watching = "watch=" in handler.path
        upstream = self.pool.request(
            "GET",
            self.upstream + handler.path,
            preload_content=False,
            retries=False,
            timeout=urllib3.Timeout(connect=5, read=None if watching else 60),
        )
        try:
            handler.send_response(upstream.status)
            handler.send_header("Content-Type", upstream.headers.get("Content-Type", "application/json"))
            handler.end_headers()
            partial = b""
            for chunk in upstream.stream(65536):
                rewrite = self.rewrite if watching else None
                if rewrite is not None or partial:
                    *lines, partial = (partial + chunk).split(b"\n")
                    chunk = b"".join(self._rewritten(rewrite, line) + b"\n" for line in lines)
                handler.wfile.write(chunk)
                if watching and chunk.endswith(b"\n"):
                    with self._lock:
                        lines = list(self.pending)
                        self.pending.clear()
                    for line in lines:
                        handler.wfile.write(line + b"\n")
                        self.injected += 1
                handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, urllib3.exceptions.HTTPError):
            pass
        finally:
            upstream.release_conn()
