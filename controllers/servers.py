"""The daemon's HTTP servers: ``/metrics`` and the ``/healthz`` + ``/readyz`` probes.

Choice: an anyio TCP listener on the application's event loop with a minimal HTTP/1.1 reader, not
``http.server`` on a thread. It runs on asyncio and trio alike and stops with its task group
(cancel ``serve()``: no thread to join, no ``shutdown()`` handshake); it adds no thread; and a
probe is answered by the same loop that runs the informers' handlers and the reconcilers, so an
event loop blocked by a misbehaving reconciler fails the kubelet's liveness probe (it times out)
instead of being reported healthy by a server thread that keeps answering. The one expensive
request, rendering ``/metrics``, runs on a worker thread through ``informers._bridge.to_thread``
(one at a time), so a scrape never stalls the loop. The server only needs what probes and
scrapers send: ``GET``/``HEAD`` with no body, one request per connection (``Connection: close``).

Hardened for what reaches a port: each connection is its own task, so a slow or half-sent request
never delays another; the request head must arrive within ``header_timeout`` (408 otherwise) and fit
in ``max_header_bytes`` (431); malformed request lines are 400; more than ``max_connections`` at
once are answered 503 at once; other methods get 405, unknown paths 404, all in plain text. Bind
addresses are controller-runtime's: ``":8080"`` (every interface), ``"127.0.0.1:8081"``,
``"[::1]:8080"``, ``":0"`` (a free port, read back from ``port``), and ``"0"`` (or ``""``) = disabled.
Invariant: nothing a client sends can raise out of ``serve()`` or block another client; only
cancellation ends it, after which the port is closed.
"""

from __future__ import annotations

import errno
import posixpath
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs, unquote, urlsplit

import anyio
import anyio.abc
from anyio.abc import SocketAttribute

from informers import _bridge
from informers._log import get_logger
from informers.errors import InformerdError

from .metrics import CONTENT_TYPE, MetricsExporter
from .probes import HealthChecks

__all__ = [
    "Handler",
    "HttpRequest",
    "HttpResponse",
    "HttpServer",
    "metrics_server",
    "parse_bind_address",
    "probe_server",
]

_log = get_logger(__name__)

_TEXT = "text/plain; charset=utf-8"
_METHOD = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_ALLOWED = ("GET", "HEAD")
_FAILED_ACCEPT_PAUSE = 0.1  # seconds to wait after accept() failed (e.g. out of file descriptors)


def parse_bind_address(address: str) -> tuple[str | None, int] | None:
    """``(host, port)`` for a controller-runtime bind address, ``host`` None for every interface;
    None when the server is disabled (``"0"`` or ``""``). Raises ``ValueError`` otherwise."""
    text = address.strip()
    if text in ("", "0"):
        return None
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise ValueError(f"bind address {address!r} has no port (want ':8080', 'host:port', or '0' to disable)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"bind address {address!r}: write an IPv6 host in brackets, e.g. '[::1]:8080'")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"bind address {address!r}: the port must be a number from 0 to 65535")
    return (host or None), int(port_text)


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    path: str
    """Percent-decoded, without the query."""
    query: dict[str, list[str]]
    """Parsed query; a parameter given without ``=`` (``?verbose``) maps to ``[""]``."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes = b""
    content_type: str = _TEXT
    headers: tuple[tuple[str, str], ...] = field(default=())

    @classmethod
    def text(cls, status: int, body: str) -> HttpResponse:
        return cls(status, body.encode())


Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]
"""Answers one request (``GET``/``HEAD`` only reach it); raising answers 500."""


class _BadRequest(InformerdError):
    """A request the server answers with an error status before any handler runs."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _parse_head(head: bytes) -> HttpRequest:
    lines = head.split(b"\n")
    try:
        request_line = lines[0].rstrip(b"\r").decode("ascii")
    except UnicodeDecodeError:
        raise _BadRequest(400, "400 bad request: the request line is not ASCII\n") from None
    parts = request_line.split(" ")
    if len(parts) != 3 or not _METHOD.fullmatch(parts[0]):
        raise _BadRequest(400, "400 bad request: malformed request line\n")
    method, target, version = parts
    if not re.fullmatch(r"HTTP/1\.[0-9]", version):
        raise _BadRequest(505 if version.startswith("HTTP/") else 400, "HTTP version not supported\n")
    for line in lines[1:]:
        line = line.rstrip(b"\r")
        if line and (b":" not in line or line[:1] in b" \t"):
            raise _BadRequest(400, "400 bad request: malformed header line\n")
    if target.startswith(("http://", "https://")):  # absolute form
        target = urlsplit(target)._replace(scheme="", netloc="").geturl() or "/"
    if not target.startswith("/"):
        raise _BadRequest(400, "400 bad request: the target must be a path\n")
    raw_path, _, raw_query = target.partition("?")
    path = unquote(raw_path, errors="replace")
    query = parse_qs(raw_query.partition("#")[0], keep_blank_values=True, errors="replace")
    return HttpRequest(method, path, query)


def _encode(response: HttpResponse, *, head_only: bool) -> bytes:
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [
        f"HTTP/1.1 {response.status} {reason}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
        "X-Content-Type-Options: nosniff",
        "Connection: close",
        *(f"{name}: {value}" for name, value in response.headers),
    ]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + response.body


class HttpServer:
    """Serves ``handler`` on ``host:port`` (``host`` None: every interface) until ``serve()`` is
    cancelled. ``name`` labels logs. Limits: ``header_timeout`` (seconds, default 10) for the request
    head to arrive, ``max_header_bytes`` (default 16 KiB), ``max_connections`` (default 64)."""

    def __init__(
        self,
        host: str | None,
        port: int,
        handler: Handler,
        *,
        name: str = "http",
        header_timeout: float = 10.0,
        max_header_bytes: int = 16 * 1024,
        max_connections: int = 64,
    ) -> None:
        self.host = host
        self.port = port
        """The bound port once ``serve()`` has started (the actual one for port 0)."""
        self.name = name
        self._handler = handler
        self.header_timeout = header_timeout
        self.max_header_bytes = max_header_bytes
        self.max_connections = max_connections
        self._connections = 0
        self.requests_total = 0
        self.rejected_total = 0
        """Connections answered with an error before a handler ran (400/408/431/503/505)."""

    @property
    def url(self) -> str:
        host = self.host or "127.0.0.1"
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    async def serve(self, *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
        """Listen and serve until cancelled. ``await group.start(server.serve)`` returns the port
        once it is bound (a bind error raises there, e.g. ``OSError`` for a port in use)."""
        listener = await anyio.create_tcp_listener(local_host=self.host, local_port=self.port)
        async with listener:
            self.port = listener.extra(SocketAttribute.local_port)
            _log.info("server listening", server=self.name, address=f"{self.host or ''}:{self.port}")
            async with anyio.create_task_group() as group:
                for one in listener.listeners:
                    assert isinstance(one, anyio.abc.SocketListener)  # what create_tcp_listener makes
                    group.start_soon(self._accept_loop, one, group)
                task_status.started(self.port)

    async def _accept_loop(self, listener: anyio.abc.SocketListener, group: anyio.abc.TaskGroup) -> None:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:  # EMFILE, ECONNABORTED...: keep serving
                level = "warning" if exc.errno in (errno.EMFILE, errno.ENFILE) else "debug"
                getattr(_log, level)("accept failed", server=self.name, error=repr(exc))
                await anyio.sleep(_FAILED_ACCEPT_PAUSE)
                continue
            group.start_soon(self._connection, stream)

    async def _connection(self, stream: anyio.abc.SocketStream) -> None:
        self._connections += 1
        try:
            async with stream:
                if self._connections > self.max_connections:
                    self.rejected_total += 1
                    await self._reply(stream, HttpResponse.text(503, "503 too many connections\n"), False)
                    return
                await self._exchange(stream)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError):
            pass  # the client went away
        except Exception as exc:  # noqa: BLE001 - a bug here must not end the server
            _log.error("connection failed", server=self.name, error=repr(exc), exc_info=exc)
        finally:
            self._connections -= 1

    async def _exchange(self, stream: anyio.abc.SocketStream) -> None:
        try:
            with anyio.fail_after(self.header_timeout):
                head = await self._read_head(stream)
            request = _parse_head(head)
        except TimeoutError:
            self.rejected_total += 1
            await self._reply(stream, HttpResponse.text(408, "408 request timeout\n"), False)
            return
        except _BadRequest as bad:
            self.rejected_total += 1
            await self._reply(stream, HttpResponse.text(bad.status, str(bad)), False)
            return
        self.requests_total += 1
        if request.method not in _ALLOWED:
            response = HttpResponse(405, b"405 method not allowed\n", headers=(("Allow", "GET, HEAD"),))
        else:
            try:
                response = await self._handler(request)
            except Exception as exc:  # noqa: BLE001 - answer 500, keep serving
                _log.error("request handler failed", server=self.name, path=request.path, error=repr(exc), exc_info=exc)
                response = HttpResponse.text(500, "500 internal server error\n")
        await self._reply(stream, response, request.method == "HEAD")

    async def _read_head(self, stream: anyio.abc.SocketStream) -> bytes:
        buffer = bytearray()
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                end = buffer.find(b"\n\n")
            if end >= 0:
                return bytes(buffer[:end])
            if len(buffer) > self.max_header_bytes:
                raise _BadRequest(431, "431 request header fields too large\n")
            chunk = await stream.receive(8192)
            buffer += chunk
            if buffer.startswith((b"\r\n", b"\n")):  # RFC 9112: ignore empty lines before a request
                buffer = bytearray(buffer.lstrip(b"\r\n"))

    async def _reply(self, stream: anyio.abc.SocketStream, response: HttpResponse, head_only: bool) -> None:
        with anyio.move_on_after(self.header_timeout):
            await stream.send(_encode(response, head_only=head_only))
            # Half-close, then read what the client still sends (a body, a pipelined request) for
            # a moment, so closing does not reset the connection before it read our answer.
            await stream.send_eof()
            with anyio.move_on_after(1.0):
                drained = 0
                while drained < 65536:
                    drained += len(await stream.receive(8192))


def _split(path: str, prefix: str) -> str | None:
    """The rest of ``path`` after the endpoint ``prefix`` (``""`` for the endpoint itself), or None."""
    if path == prefix:
        return ""
    if path.startswith(prefix + "/"):
        return path[len(prefix) :]
    return None


def metrics_server(bind_address: str, exporter: MetricsExporter, *, header_timeout: float = 10.0) -> HttpServer | None:
    """The ``/metrics`` server for ``exporter`` on ``bind_address`` (None when it is ``"0"``).
    The body is rendered on a worker thread, one scrape at a time."""
    parsed = parse_bind_address(bind_address)
    if parsed is None:
        return None
    limiter = anyio.CapacityLimiter(1)

    async def handle(request: HttpRequest) -> HttpResponse:
        if request.path != "/metrics":
            return HttpResponse.text(404, "404 page not found\n")
        body = await _bridge.to_thread(exporter.render, limiter=limiter)
        return HttpResponse(200, body, CONTENT_TYPE)

    return HttpServer(*parsed, handle, name="metrics", header_timeout=header_timeout)


def probe_server(
    bind_address: str, healthz: HealthChecks, readyz: HealthChecks, *, header_timeout: float = 10.0
) -> HttpServer | None:
    """The ``/healthz`` and ``/readyz`` server on ``bind_address`` (None when it is ``"0"``)."""
    parsed = parse_bind_address(bind_address)
    if parsed is None:
        return None
    endpoints = (("/healthz", healthz), ("/readyz", readyz))

    async def handle(request: HttpRequest) -> HttpResponse:
        path = posixpath.normpath("/" + request.path.lstrip("/"))
        for prefix, checks in endpoints:
            rest = _split(path, prefix)
            if rest is not None:
                status, body = await checks.handle(rest, request.query)
                return HttpResponse.text(status, body)
        return HttpResponse.text(404, "404 page not found\n")

    return HttpServer(*parsed, handle, name="probes", header_timeout=header_timeout)
