"""Refusals of the fake apiserver: one exception carrying the ``Status`` a real apiserver sends.

Every error answer of the fake kit (404, 409, 410, 422, 504...) is raised inside the fake as
``FakeStatus`` and leaves it as the typed error that ``informers.errors.api_error_from_response``
builds from the Status JSON body, the same function the real ``ApiClient`` uses, so code under
test classifies a fake refusal exactly as it would a real one. The helpers spell the reasons and
messages the way the apiserver does (``pods "x" not found``, ``the object has been modified``...).
Invariant: ``body()`` is always a ``Status`` object whose ``code`` equals ``code``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ..errors import ApiError, InformerdError, api_error_from_response

__all__ = [
    "FakeStatus",
    "already_exists",
    "bad_request",
    "conflict",
    "expired",
    "invalid",
    "not_found",
    "reason_for",
    "too_large",
]

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Gone",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def reason_for(code: int) -> str:
    """The ``Status.reason`` the apiserver uses for an HTTP status (``""`` when it has none)."""
    return _REASONS.get(code, "")


class FakeStatus(InformerdError):
    """An error answer: HTTP ``code``, ``reason``, ``message``, optional ``details`` and headers.
    Internal to the fake: it leaves ``FakeCluster`` as the typed ``ApiError`` (``error()``)."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason_for(code) if reason is None else reason
        self.message = message
        self.details = dict(details or {})
        self.headers = dict(headers or {})

    def status(self) -> dict[str, Any]:
        """The ``Status`` object (for a body or a watch ERROR event)."""
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "code": self.code,
        }
        if self.reason:
            status["reason"] = self.reason
        if self.details:
            status["details"] = self.details
        return status

    def body(self) -> bytes:
        return orjson.dumps(self.status())

    def error(self, method: str, path: str) -> ApiError:
        """The typed error a real ``ApiClient`` raises for this answer."""
        return api_error_from_response(self.code, self.body(), self.headers, method=method, path=path)


def _qualified(plural: str, group: str) -> str:
    return f"{plural}.{group}" if group else plural


def not_found(plural: str, group: str, name: str) -> FakeStatus:
    return FakeStatus(
        404, f'{_qualified(plural, group)} "{name}" not found', details={"name": name, "group": group, "kind": plural}
    )


def already_exists(plural: str, group: str, name: str) -> FakeStatus:
    return FakeStatus(
        409,
        f'{_qualified(plural, group)} "{name}" already exists',
        reason="AlreadyExists",
        details={"name": name, "group": group, "kind": plural},
    )


def conflict(plural: str, group: str, name: str, why: str) -> FakeStatus:
    return FakeStatus(
        409,
        f'Operation cannot be fulfilled on {_qualified(plural, group)} "{name}": {why}',
        details={"name": name, "group": group, "kind": plural},
    )


def invalid(kind: str, group: str, name: str, why: str) -> FakeStatus:
    return FakeStatus(
        422,
        f'{kind} "{name}" is invalid: {why}',
        details={"name": name, "group": group, "kind": kind, "causes": [{"message": why}]},
    )


def bad_request(message: str) -> FakeStatus:
    return FakeStatus(400, message)


def expired(message: str) -> FakeStatus:
    """410 with reason ``Expired``: a compacted resourceVersion or continue token."""
    return FakeStatus(410, message, reason="Expired")


def too_large(requested: int, current: int) -> FakeStatus:
    """The apiserver's answer to a resourceVersion newer than anything it has seen."""
    return FakeStatus(
        504,
        f"Too large resource version: {requested}, current: {current}",
        reason="Timeout",
        details={
            "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
            "retryAfterSeconds": 1,
        },
    )
