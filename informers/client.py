"""HTTP access to the apiserver: throttled, retried, typed requests and line-oriented watch streams.

``ApiClient`` sends blocking requests with urllib3 from the calling thread (the informer runs it in
worker threads). Each attempt first takes a token from a client-side QPS/Burst bucket, runs with
connect and read timeouts, and is retried only where client-go retries: 429/5xx answers that carry
a numeric ``Retry-After`` (any method), and GETs whose connection failed before an answer, all
within the call's one ``RetryBudget`` (module ``_retry``: ``max_retries`` repeats in all). Bodies
stay bytes; ``Response.json()`` decodes with orjson into plain dicts. ``watch()`` returns a
``WatchStream`` (module ``watchstream``) yielding the event lines undecoded, under an idle deadline.
Invariant: every attempt passes the token bucket and its call's retry budget before it is sent,
every answer >= 400 leaves as
the typed error of ``api_error_from_response``, and a closed ``WatchStream`` leaves no thread
blocked on its socket.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import quote, urlencode, urlsplit

import orjson
import urllib3
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from . import _interrupt
from ._log import get_logger
from ._retry import RetryBudget, parse_retry_after
from ._tokenbucket import TokenBucket, TokenBucketStatistics
from ._watchstream import WatchStream
from .clock import SYSTEM_CLOCK, Clock
from .config import ClientConfig
from .errors import (
    ClientClosedError,
    ConnectError,
    MalformedResponseError,
    RequestInterruptedError,
    StreamStalledError,
    TLSVerificationError,
    TransportError,
    api_error_from_response,
)

__all__ = ["ApiClient", "ClientStatistics", "RequestObserver", "Response"]

_log = get_logger(__name__)

_LONG_THROTTLE = 0.05  # client-go logs throttling waits above 50 ms...
_EXTRA_LONG_THROTTLE = 1.0  # ...and at a visible level above 1 s
_IDEMPOTENT = frozenset({"GET", "HEAD"})
_ERROR_CODE = "<error>"  # client-go's code label when no answer arrived


@dataclass(frozen=True, slots=True)
class Response:
    """One HTTP answer: status, headers (case-insensitive) and the raw body bytes."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body decoded with orjson (plain dicts and lists)."""
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise MalformedResponseError(f"answer body is not JSON: {exc}") from exc


class RequestObserver(Protocol):
    """Receives one call per attempt/wait; feeds client-go-like ``rest_client_*`` metrics.

    Called from the requesting thread; must be quick and thread-safe. Exceptions are logged and
    ignored. ``code`` is the HTTP status as text, or ``"<error>"`` when no answer arrived.
    """

    def request_done(self, *, method: str, host: str, code: str, seconds: float) -> None: ...

    def request_throttled(self, *, method: str, host: str, seconds: float) -> None: ...

    def request_retried(self, *, method: str, host: str, code: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ClientStatistics:
    host: str
    requests: Mapping[tuple[str, str], int]
    """Attempts by (method, status class): ``"2xx"`` .. ``"5xx"``, or ``"error"`` (no answer)."""
    retries: int
    """Attempts repeated after a 429/5xx with ``Retry-After``."""
    connection_retries: int
    """GET attempts repeated after a connection failure."""
    throttle_waits: int
    """Attempts that waited for the client-side token bucket."""
    long_throttle_waits: int
    """Of those, waits over 50 ms (logged as client-side throttling)."""
    throttle_seconds: float
    in_flight: int
    open_watches: int
    token_bucket: TokenBucketStatistics


def _encode_query(query: Mapping[str, Any] | None) -> str:
    if not query:
        return ""
    items: list[tuple[str, str]] = []
    for key, value in query.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            if item is None:
                continue
            items.append((key, ("true" if item else "false") if isinstance(item, bool) else str(item)))
    return urlencode(items, quote_via=quote)


def _bypasses_proxy(host_url: str, no_proxy: str | None) -> bool:
    """Whether ``host_url`` matches a ``no_proxy`` entry: ``*``, a domain suffix, host:port or a CIDR."""
    if not no_proxy:
        return False
    parts = urlsplit(host_url)
    host = (parts.hostname or "").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
        entry = entry.lstrip(".")
        netloc = parts.netloc.lower()
        if host == entry or host.endswith("." + entry) or netloc == entry:
            return True
    return False


def _abortable(pool_class: type[HTTPConnectionPool]) -> type[HTTPConnectionPool]:
    """``pool_class`` whose requests a stopping owner can abort (``informers._interrupt``): from the
    TCP connect, through the TLS handshake, to the last byte of the answer (for a LIST), shutting
    the request's socket down is how another thread wakes it."""

    class AbortableConnection(pool_class.ConnectionCls):  # type: ignore[name-defined, misc]
        def _new_conn(self) -> socket.socket:
            sock: socket.socket = super()._new_conn()
            # The TLS handshake detaches this socket object and blocks on its file descriptor
            # before ``self.sock`` is the wrapped one: remember the descriptor to abort it.
            self._raw_fd = sock.fileno()
            return sock

    class Abortable(pool_class):  # type: ignore[valid-type, misc]
        ConnectionCls = AbortableConnection

        def _make_request(self, conn: Any, *args: Any, **kwargs: Any) -> Any:
            interrupter = _interrupt.current()
            if interrupter is None:
                return super()._make_request(conn, *args, **kwargs)

            def abort() -> None:
                sock = getattr(conn, "sock", None)
                if sock is not None and sock.fileno() != -1:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                    return
                fd = getattr(conn, "_raw_fd", -1)
                if fd >= 0:  # mid-handshake: shut the descriptor down without taking it over
                    raw = socket.socket(fileno=fd)
                    try:
                        with contextlib.suppress(OSError):
                            raw.shutdown(socket.SHUT_RDWR)
                    finally:
                        raw.detach()

            with interrupter.guard(abort, "request"):
                return super()._make_request(conn, *args, **kwargs)

    Abortable.__name__ = f"Abortable{pool_class.__name__}"
    return Abortable


_ABORTABLE = {"http": _abortable(HTTPConnectionPool), "https": _abortable(HTTPSConnectionPool)}


def _build_pool(config: ClientConfig) -> urllib3.PoolManager:
    """One PoolManager carrying the TLS material; urllib3 drops the TLS keys for http:// pools."""
    kwargs: dict[str, Any] = {
        "maxsize": config.pool_maxsize,
        "block": False,
        "cert_reqs": ssl.CERT_REQUIRED if config.verify_ssl else ssl.CERT_NONE,
        "ca_certs": config.ca_file,
        "ca_cert_data": config.ca_data,
        "cert_file": config.cert_file,
        "key_file": config.key_file,
    }
    if config.tls_server_name:
        kwargs["server_hostname"] = config.tls_server_name
    if not config.proxy or _bypasses_proxy(config.host, config.no_proxy):
        manager = urllib3.PoolManager(**kwargs)
        manager.pool_classes_by_scheme = dict(_ABORTABLE)
        return manager
    if config.proxy.lower().startswith("socks"):
        try:
            from urllib3.contrib.socks import SOCKSProxyManager
        except ImportError as exc:  # PySocks missing
            raise ConnectError(f"SOCKS proxy {config.proxy} needs the PySocks package") from exc
        return SOCKSProxyManager(config.proxy, headers=dict(config.proxy_headers or {}), **kwargs)
    manager = urllib3.ProxyManager(config.proxy, proxy_headers=dict(config.proxy_headers or {}), **kwargs)
    manager.pool_classes_by_scheme = dict(_ABORTABLE)
    return manager


def _transport_error(
    exc: BaseException, method: str, path: str, read_timeout: float, *, stream: bool = False
) -> TransportError:
    where = f"{method} {path}"
    if isinstance(exc, ReadTimeoutError):
        if stream:  # a watch whose headers never come is as stalled as one whose events stop
            return StreamStalledError(
                f"{where}: no answer within the idle deadline of {read_timeout:g} s (stalled or half-open connection)"
            )
        return TransportError(f"{where}: no answer within the read timeout of {read_timeout:g} s")
    if _certificate_rejected(exc):
        return TLSVerificationError(
            f"{where}: cannot connect: the server's TLS certificate could not be verified ({_verify_reason(exc)}); "
            "check the CA (certificate-authority in the kubeconfig, ca_file / ca_data) and the server name"
        )
    if isinstance(exc, (ConnectTimeoutError, SSLError, ProxyError)):
        return ConnectError(f"{where}: cannot connect: {exc}")
    if isinstance(exc, ProtocolError):
        return TransportError(f"{where}: connection dropped before a complete answer: {exc}")
    return TransportError(f"{where}: {type(exc).__name__}: {exc}")


def _verification_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind ``exc`` (urllib3 wraps ssl's), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        nested = [a for a in current.args if isinstance(a, BaseException)]
        current = current.__cause__ or current.__context__ or (nested[0] if nested else None)
    return None


def _certificate_rejected(exc: BaseException) -> bool:
    return _verification_failure(exc) is not None or (
        isinstance(exc, SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(exc)
    )


def _verify_reason(exc: BaseException) -> str:
    failure = _verification_failure(exc)
    if failure is not None and failure.verify_message:
        return str(failure.verify_message)
    return "certificate verify failed"


def _connection_failed(exc: BaseException) -> bool:
    """Failures where the server cannot have answered: connect errors and dropped connections."""
    return isinstance(exc, ProtocolError) or (isinstance(exc, ConnectTimeoutError) and not isinstance(exc, SSLError))


class ApiClient:
    """Blocking, thread-safe client for one apiserver; share one per process.

    ``sleep`` (tests only) replaces the waits for the token bucket and retries; by default they
    are interruptible by ``close()``.
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        clock: Clock = SYSTEM_CLOCK,
        observer: RequestObserver | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        self._observer = observer
        self._closed = threading.Event()
        self._sleep_fn = sleep
        self._base = config.host.rstrip("/")
        self._host_label = urlsplit(config.host).netloc
        self._bucket = TokenBucket(config.qps, config.burst, clock=clock)
        self._pool = _build_pool(config)
        if not config.verify_ssl and self._base.startswith("https"):
            # Only an explicit setting gets here (verify_ssl=False, insecure-skip-tls-verify).
            _log.warning(
                "TLS verification is off: the server's certificate is not checked, so anyone on the path "
                "can impersonate the apiserver; set a CA instead (certificate-authority, ca_file, ca_data)",
                host=self._host_label,
            )
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, str]] = Counter()
        self._retries = 0
        self._connection_retries = 0
        self._throttle_waits = 0
        self._long_throttle_waits = 0
        self._throttle_seconds = 0.0
        self._in_flight = 0
        self._watches: weakref.WeakSet[WatchStream] = weakref.WeakSet()
        self._sleepers: set[_interrupt.Interrupter] = set()

    # -- public API -----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: bytes | str | Mapping[str, Any] | list[Any] | None = None,
        content_type: str = "application/json",
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
        budget: RetryBudget | None = None,
    ) -> Response:
        """Send one request; return the answer, or raise ``ApiError`` / ``TransportError``.

        ``body`` bytes are sent as is, other values are encoded with orjson. ``timeout`` is the
        read timeout in seconds (default ``config.read_timeout``). ``headers`` are added to (or
        replace) the defaults, e.g. ``Accept`` for discovery or ``Impersonate-User``. ``budget``
        is for a layer above that owns the call's retries (``ApiWriter``); by default the call
        gets ``max_retries`` repeats, at most ``connection_retries`` of them after connection
        failures (GETs only).
        """
        read_timeout = self.config.read_timeout if timeout is None else timeout
        resp = self._send(
            method.upper(),
            path,
            query,
            body,
            content_type,
            read_timeout,
            stream=False,
            extra_headers=headers,
            budget=budget,
        )
        return Response(status=resp.status, headers=resp.headers, body=resp.data)

    def get_json(self, path: str, query: Mapping[str, Any] | None = None) -> Any:
        """GET ``path`` and decode the JSON answer."""
        return self.request("GET", path, query=query).json()

    def watch(self, path: str, query: Mapping[str, Any] | None = None, *, idle_timeout: float) -> WatchStream:
        """Open a watch (``watch=true`` is added unless given) and return its line stream.

        Raises the typed error at once if the server refuses the watch. ``idle_timeout`` seconds
        without a byte make the stream raise ``StreamStalledError``.
        """
        if not idle_timeout > 0:
            raise ValueError("idle_timeout must be a positive number of seconds")
        params: dict[str, Any] = dict(query or {})
        params.setdefault("watch", "true")
        resp = self._send("GET", path, params, None, "", idle_timeout, stream=True)
        stream = WatchStream(resp, path=path, idle_timeout=idle_timeout, on_release=self._watch_done)
        with self._lock:
            self._watches.add(stream)
        if self._closed.is_set():  # closed while we were opening
            stream.close()
        return stream

    def close(self) -> None:
        """Stop: close open watches, wake throttled or retrying callers, drop pooled connections."""
        self._closed.set()
        with self._lock:
            watches = list(self._watches)
            sleepers = list(self._sleepers)
        for interrupter in sleepers:
            interrupter.interrupt()
        for stream in watches:
            stream.close()
        self._pool.clear()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def statistics(self) -> ClientStatistics:
        with self._lock:
            return ClientStatistics(
                host=self._host_label,
                requests=dict(self._requests),
                retries=self._retries,
                connection_retries=self._connection_retries,
                throttle_waits=self._throttle_waits,
                long_throttle_waits=self._long_throttle_waits,
                throttle_seconds=self._throttle_seconds,
                in_flight=self._in_flight,
                open_watches=len(self._watches),
                token_bucket=self._bucket.statistics(),
            )

    # -- internals ------------------------------------------------------------------------------

    def _url(self, path: str, query: Mapping[str, Any] | None) -> str:
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', got {path!r}")
        encoded = _encode_query(query)
        return f"{self._base}{path}?{encoded}" if encoded else f"{self._base}{path}"

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": self.config.user_agent}
        if content_type:
            headers["Content-Type"] = content_type
        authorization = self.config.authorization_header()  # may run an exec plugin
        if authorization:
            headers["Authorization"] = authorization
        return headers

    def _sleep(self, seconds: float) -> None:
        interrupter = _interrupt.current()
        if self._sleep_fn is not None:
            self._sleep_fn(seconds)
        elif interrupter is not None:
            with self._lock:  # close() wakes it too (by interrupting: the owner is ending anyway)
                self._sleepers.add(interrupter)
            try:
                if not self._closed.is_set():
                    interrupter.wait(seconds)
            finally:
                with self._lock:
                    self._sleepers.discard(interrupter)
        else:
            self._closed.wait(seconds)
        if self._closed.is_set():
            raise ClientClosedError("the ApiClient was closed while waiting")
        if interrupter is not None:
            interrupter.check("waiting to retry")

    def _throttle(self, method: str, path: str) -> None:
        delay = self._bucket.reserve()
        if delay <= 0:
            return
        long_wait = delay > _LONG_THROTTLE
        with self._lock:
            self._throttle_waits += 1
            self._throttle_seconds += delay
            self._long_throttle_waits += long_wait
        if long_wait:
            # As client-go: detail above 50 ms, a visible line only when a wait passes 1 s.
            log = _log.info if delay > _EXTRA_LONG_THROTTLE else _log.debug
            log(
                "client-side throttling",
                method=method,
                path=path,
                wait_seconds=round(delay, 3),
                qps=self.config.qps,
                burst=self.config.burst,
            )
        self._notify("request_throttled", method=method, host=self._host_label, seconds=delay)
        self._sleep(delay)

    def _notify(self, event: str, **fields: Any) -> None:
        if self._observer is None:
            return
        try:
            getattr(self._observer, event)(**fields)
        except Exception:  # noqa: BLE001 - a metrics bug must not fail requests
            _log.exception("request observer failed", observer_event=event)

    def _record(self, method: str, code: str, started: float) -> None:
        code_class = f"{code[0]}xx" if code != _ERROR_CODE else "error"
        with self._lock:
            self._requests[(method, code_class)] += 1
        seconds = max(0.0, self._clock.monotonic() - started)
        self._notify("request_done", method=method, host=self._host_label, code=code, seconds=seconds)

    def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None,
        body: bytes | str | Mapping[str, Any] | list[Any] | None,
        content_type: str,
        read_timeout: float,
        *,
        stream: bool,
        extra_headers: Mapping[str, str] | None = None,
        budget: RetryBudget | None = None,
    ) -> urllib3.BaseHTTPResponse:
        url = self._url(path, query)
        payload: bytes | None
        if body is None or isinstance(body, bytes):
            payload = body
        elif isinstance(body, str):
            payload = body.encode()
        else:
            payload = orjson.dumps(body)
        timeout = urllib3.Timeout(connect=self.config.connect_timeout, read=read_timeout)
        if budget is None:
            budget = RetryBudget(self.config.max_retries, connection_retries=self.config.connection_retries)
        while True:
            if self._closed.is_set():
                raise ClientClosedError(f"{method} {path}: the ApiClient is closed")
            self._throttle(method, path)
            headers = self._headers(content_type if payload is not None else None)
            if extra_headers:
                headers.update(extra_headers)
            budget.start_attempt()
            started = self._clock.monotonic()
            with self._lock:
                self._in_flight += 1
            try:
                resp = self._pool.request(
                    method,
                    url,
                    body=payload,
                    headers=headers,
                    timeout=timeout,
                    retries=False,
                    redirect=False,
                    preload_content=not stream,
                )
            except (HTTPError, OSError) as exc:
                self._record(method, _ERROR_CODE, started)
                interrupter = _interrupt.current()
                if interrupter is not None and interrupter.interrupted:
                    raise RequestInterruptedError(f"{method} {path}: interrupted (the owner is stopping)") from exc
                error = _transport_error(exc, method, path, read_timeout, stream=stream)
                if (
                    method in _IDEMPOTENT
                    and _connection_failed(exc)
                    and budget.retry_in_client
                    and budget.spend(connection=True)
                ):
                    with self._lock:
                        self._connection_retries += 1
                    _log.info(
                        "retrying after a connection failure",
                        method=method,
                        path=path,
                        attempt=budget.spent,
                        error=str(error),
                    )
                    self._notify("request_retried", method=method, host=self._host_label, code=_ERROR_CODE)
                    self._sleep(self.config.connection_retry_delay)
                    continue
                raise error from exc
            finally:
                with self._lock:
                    self._in_flight -= 1
            self._record(method, str(resp.status), started)
            if resp.status < 400:
                return resp
            error_body = resp.data if not stream else self._drain(resp, method, path, read_timeout)
            wait = parse_retry_after(resp.headers.get("Retry-After"))
            if (
                (resp.status == 429 or resp.status >= 500)
                and wait is not None
                and budget.retry_in_client
                and budget.spend()
            ):
                with self._lock:
                    self._retries += 1
                _log.info(
                    "retrying as the server asked",
                    method=method,
                    path=path,
                    status=resp.status,
                    retry_after=wait,
                    attempt=budget.spent,
                )
                self._notify("request_retried", method=method, host=self._host_label, code=str(resp.status))
                self._sleep(wait)
                continue
            raise api_error_from_response(resp.status, error_body, resp.headers, method=method, path=path)

    @staticmethod
    def _drain(resp: urllib3.BaseHTTPResponse, method: str, path: str, read_timeout: float) -> bytes:
        """Read a streamed error answer (small Status JSON) and give the connection back."""
        try:
            return resp.read()
        except (HTTPError, OSError) as exc:
            raise _transport_error(exc, method, path, read_timeout) from exc
        finally:
            resp.release_conn()

    def _watch_done(self, stream: WatchStream) -> None:
        with self._lock:
            self._watches.discard(stream)
