"""The errors a controller raises and the ones a reconciler raises to steer it.

A reconciler signals "retrying cannot help" by raising ``TerminalError`` (or any exception whose
explicit ``__cause__`` chain contains one, like Go's ``errors.Is``); the worker pool then logs and
counts the failure and forgets the key. Every other exception is retried with rate-limited backoff.
The controller's own failures (caches that never synced, a reconcile that overran its timeout, a
reconciler returning something that is not a ``Result``) have their own types here, all under
``ControllerError``, itself an ``informers.errors.InformerdError``, so one ``except`` catches the
whole runtime. Invariant: ``is_terminal`` is the only place that decides whether a failure is
retried, so the worker pool and tests agree on it.
"""

from __future__ import annotations

from collections.abc import Mapping

from informers.errors import InformerdError, SyncTimeoutError

__all__ = [
    "ControllerError",
    "ControllerStateError",
    "ControllerSyncTimeoutError",
    "InvalidResultError",
    "ReconcileCancelledError",
    "ReconcileTimeoutError",
    "TerminalError",
    "is_terminal",
]


class ControllerError(InformerdError):
    """Base of the controller runtime's errors."""


class TerminalError(ControllerError):
    """Raised by a reconciler when retrying cannot help (an invalid spec, a forbidden action).

    The key is logged, counted in ``terminal_reconcile_errors_total`` and forgotten; it is
    reconciled again only when a new event for it arrives. Wrap the underlying error with
    ``raise TerminalError("why") from exc`` so the log shows both.
    """


class ReconcileTimeoutError(ControllerError):
    """A reconcile ran past the controller's ``reconcile_timeout``; it is retried with backoff."""

    retryable = True

    def __init__(self, message: str, *, seconds: float) -> None:
        super().__init__(message)
        self.seconds = seconds


class ReconcileCancelledError(ControllerError):
    """Raised by ``ReconcileContext.raise_if_cancelled()``: the reconcile timed out or the
    controller is shutting down, so its result will be ignored."""


class InvalidResultError(ControllerError, TypeError):
    """A reconciler returned something other than a ``Result`` or ``None`` (a programming error)."""


class ControllerStateError(ControllerError):
    """The controller was used in a way its lifecycle forbids (run twice, configured while running)."""


class ControllerSyncTimeoutError(SyncTimeoutError, ControllerError):
    """The controller's caches or handlers did not sync in time, so no worker was started.

    ``causes`` maps each informer (or handler) that lagged to its last error, or None if it was
    simply still listing; the message spells each one out.
    """

    def __init__(self, message: str, causes: Mapping[str, BaseException | None] | None = None) -> None:
        super().__init__(message, causes)


def is_terminal(exc: BaseException) -> bool:
    """True if ``exc`` is a ``TerminalError`` or was raised ``from`` one (explicit causes only:
    an exception merely raised while handling a terminal one is not terminal)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, TerminalError):
            return True
        seen.add(id(current))
        current = current.__cause__
    return False
