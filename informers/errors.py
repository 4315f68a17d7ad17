"""The one exception tree of informerd's Kubernetes side.

Every error carries a readable message; API errors also carry the HTTP status, the server's
``Status.reason`` and message, and any ``Retry-After``. ``retryable`` says whether the same request
may succeed later unchanged (429, 5xx, timeouts, dropped connections), so callers never parse text.
Invariant: ``api_error_from_response`` always returns an ``ApiError`` subclass, never raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ._retry import parse_retry_after

__all__ = [
    "AlreadyExistsError",
    "ApiError",
    "BadRequestError",
    "ClientClosedError",
    "ConfigError",
    "ConflictError",
    "ConnectError",
    "ExpiredError",
    "ForbiddenError",
    "GoneError",
    "InformerdError",
    "InternalServerError",
    "InvalidError",
    "MalformedResponseError",
    "NotFoundError",
    "RequestInterruptedError",
    "RequestTooLargeError",
    "ResourceNotFoundError",
    "ServerError",
    "ServerTimeoutError",
    "ServiceUnavailableError",
    "StreamStalledError",
    "SyncTimeoutError",
    "TLSVerificationError",
    "TooManyRequestsError",
    "TransportError",
    "UnauthorizedError",
    "api_error_from_response",
    "api_error_from_status",
]


def _bounded(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters: messages and logs stay small whatever a server
    (or a 10,000-entry label selector) puts in them. The full values stay on the error's attributes."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


class InformerdError(Exception):
    """Base of every error raised by informerd."""

    retryable: bool = False


class ConfigError(InformerdError):
    """Configuration could not be loaded or is invalid (kubeconfig, in-cluster, options)."""


class ClientClosedError(InformerdError):
    """The ``ApiClient`` (or an ``ApiWriter``) was closed; nothing more is sent.

    Not a ``TransportError`` and never retryable: a closed client stays closed, so every retry
    loop stops on it (the reflector ends its thread, the writer raises it at once).
    """


class TransportError(InformerdError):
    """The request never got an HTTP answer: refused, reset, TLS failure, read timeout."""

    retryable = True


class ConnectError(TransportError):
    """The TCP/TLS connection could not be made."""


class TLSVerificationError(ConnectError):
    """The server's TLS certificate was not trusted: not signed by the configured CA (``ca_file`` /
    ``ca_data``, else the system CAs), expired, or not issued for the host (or ``tls_server_name``).
    The connection is refused (fails closed) and never retried: the answer will not change."""

    retryable = False


class RequestInterruptedError(TransportError):
    """A request was aborted because its owner is stopping (``informers._interrupt``). Not retried."""

    retryable = False


class StreamStalledError(TransportError):
    """A watch stream sent nothing for longer than its idle deadline (half-open or stalled)."""


class MalformedResponseError(InformerdError):
    """An answer from the apiserver (a list body, an object or a watch line) could not be decoded.

    Retryable: the informer restarts its list or watch; a writer call may repeat the request.
    """

    retryable = True


class SyncTimeoutError(InformerdError):
    """Informers did not sync in time; ``causes`` maps each informer name to why (or None)."""

    def __init__(self, message: str, causes: Mapping[str, BaseException | None] | None = None):
        super().__init__(_bounded(message, 4000))
        self.causes: dict[str, BaseException | None] = dict(causes or {})


class ApiError(InformerdError):
    """The apiserver answered with an error status."""

    status: int = 0

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str = "",
        details: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
        method: str = "",
        path: str = "",
    ) -> None:
        if status is not None:
            self.status = status
        self.reason = reason
        self.server_message = message
        self.details: dict[str, Any] = dict(details or {})
        self.retry_after = retry_after
        self.method = method
        self.path = path
        where = f" ({method} {_bounded(path, 300)})" if method or path else ""
        # Both come from the server (or whatever stands in its place): bounded, however long.
        label = _bounded(reason, 100) if reason else type(self).__name__
        super().__init__(f"{self.status} {label}: {_bounded(message, 1000)}{where}")


class BadRequestError(ApiError):
    status = 400


class UnauthorizedError(ApiError):
    status = 401


class ForbiddenError(ApiError):
    status = 403


class NotFoundError(ApiError):
    status = 404


class ResourceNotFoundError(NotFoundError):
    """The resource type itself is unknown to the server (no such group/version/plural or kind)."""


class ConflictError(ApiError):
    """409: the object changed since it was read (optimistic concurrency)."""

    status = 409


class AlreadyExistsError(ConflictError):
    status = 409


class GoneError(ApiError):
    """410: the requested resourceVersion was compacted; a relist is needed."""

    status = 410


class ExpiredError(GoneError):
    """410 with reason Expired: a continue token or resourceVersion is too old."""


class InvalidError(ApiError):
    status = 422


class RequestTooLargeError(ApiError):
    """The request (an object) is too large to store: HTTP 413, or etcd's "request is too large",
    which the apiserver passes on as a 500. The caller's fault, not the server's: never retried,
    and never counted against the API group's circuit breaker."""

    status = 413


class TooManyRequestsError(ApiError):
    status = 429
    retryable = True


class ServerError(ApiError):
    """5xx: the server failed; the request may succeed later."""

    status = 500
    retryable = True


class InternalServerError(ServerError):
    status = 500


class ServiceUnavailableError(ServerError):
    status = 503


class ServerTimeoutError(ServerError):
    """504 or reason ServerTimeout/Timeout: the server gave up waiting."""

    status = 504


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    422: InvalidError,
    413: RequestTooLargeError,
    429: TooManyRequestsError,
    500: InternalServerError,
    503: ServiceUnavailableError,
    504: ServerTimeoutError,
}
_ETCD_TOO_LARGE = "request is too large"
_BY_REASON: dict[str, type[ApiError]] = {
    "RequestEntityTooLarge": RequestTooLargeError,
    "AlreadyExists": AlreadyExistsError,
    "Expired": ExpiredError,
    "Gone": GoneError,
    "ServerTimeout": ServerTimeoutError,
    "Timeout": ServerTimeoutError,
    "TooManyRequests": TooManyRequestsError,
}


def _status_code(value: object) -> int | None:
    """An HTTP status code from a Status object's ``code``, or None for anything else (a hostile
    or broken answer must still become a typed error, never a ValueError)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and 100 <= value <= 599:
        return value
    return None


def api_error_from_status(
    status_obj: Mapping[str, Any],
    *,
    http_status: int | None = None,
    retry_after: float | None = None,
    method: str = "",
    path: str = "",
) -> ApiError:
    """Build the typed error for a ``Status`` object (from a body or a watch ERROR event)."""
    code = _status_code(status_obj.get("code")) or _status_code(http_status) or 500
    reason = str(status_obj.get("reason") or "")
    message = str(status_obj.get("message") or "")
    details = status_obj.get("details") or {}
    if retry_after is None and isinstance(details, Mapping) and details.get("retryAfterSeconds"):
        retry_after = parse_retry_after(str(details["retryAfterSeconds"]))
    cls = _BY_REASON.get(reason) or _BY_STATUS.get(code)
    if code >= 500 and _ETCD_TOO_LARGE in message:
        cls = RequestTooLargeError  # etcd's size limit, reported as an internal error
    if cls is None:
        cls = ServerError if code >= 500 else ApiError
    return cls(
        message or reason or f"HTTP {code}",
        status=code,
        reason=reason,
        details=details if isinstance(details, Mapping) else None,
        retry_after=retry_after,
        method=method,
        path=path,
    )


def api_error_from_response(
    http_status: int,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    method: str = "",
    path: str = "",
) -> ApiError:
    """Classify an HTTP error answer; tolerates non-JSON bodies (e.g. filter-level 429 text, of
    which the first 500 characters are quoted). A JSON body that is not a Status is never quoted."""
    retry_after = parse_retry_after((headers or {}).get("Retry-After"))
    status_obj: Mapping[str, Any] = {}
    json_body = False
    try:
        decoded = orjson.loads(body) if body else None
        json_body = decoded is not None
        if isinstance(decoded, dict) and decoded.get("kind") == "Status":
            status_obj = decoded
    except orjson.JSONDecodeError:
        pass
    if not status_obj:
        text = body.decode("utf-8", "replace").strip()
        if json_body or text.startswith(("{", "[")):
            # JSON that is not a Status (or is cut short) is most likely an object: a Secret's
            # data must not end up in a log line, so only its size is told.
            text = f"HTTP {http_status} with a {len(body)}-byte JSON body that is not a Status (not quoted)"
        status_obj = {"code": http_status, "message": text[:500] or f"HTTP {http_status}"}
    return api_error_from_status(
        {**status_obj, "code": status_obj.get("code") or http_status},
        http_status=http_status,
        retry_after=retry_after,
        method=method,
        path=path,
    )
