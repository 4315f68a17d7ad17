"""The reconciler contract: what a controller calls for each key, and the context it passes.

A reconciler is an object with a ``reconcile(request, obj, ctx)`` method (the ``Reconciler``
Protocol) or a plain callable with the same signature, written either as a plain function (run in
a worker thread) or with ``async def`` (run as a task on the controller's event loop).

The contract a reconciler must honour:

* **Level-triggered and idempotent.** It is handed a key, not an event: ``obj`` is the *current*
  cached state of the object with ``request.uid`` (a fresh dict it may modify), never the change
  that caused the call. Many events may collapse into one call, and a call may come with no change
  at all (resync, restart, a child's event), so calling it twice with the same state must leave the
  world as calling it once: create children under deterministic names and treat "already exists"
  as success, write status only when it differs.
* **``None`` means gone.** ``obj is None`` when no object with that UID is cached any more: it was
  deleted. Keys are UIDs, so a delete and a re-create under the same name are two different keys:
  the old UID's call gets ``None`` and the new UID's call gets the new object, in either order.
  ``request.namespace`` / ``request.name`` are for logs; look children up by owner UID.
* **One call per key at a time**, never two concurrently; different keys run concurrently up to
  ``max_concurrent_reconciles``.
* **Outcome.** Return ``None`` / ``Result.done()`` when converged, ``Result.requeue()`` to retry
  with backoff, ``Result.requeue_after(s)`` to look again later; raise ``TerminalError`` when a retry
  cannot help; any other exception is logged and retried with backoff.
* **Timeouts.** Past the controller's ``reconcile_timeout`` an async reconcile is cancelled; a sync
  one cannot be interrupted, so its worker moves on, its result is ignored and
  ``ctx.cancelled`` becomes true: long sync loops should check it (or ``ctx.raise_if_cancelled()``
  / ``ctx.wait_cancelled(seconds)`` instead of ``time.sleep``). The key stays busy until the thread
  really returns, so the overrunning call never races a newer one for the same key.

Invariant: a ``ReconcileContext`` is cancelled at most once and never un-cancelled.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeAlias, runtime_checkable

from informers._log import get_logger
from informers.clock import SYSTEM_CLOCK, Clock
from informers.objects import RawObject

from .errors import ReconcileCancelledError
from .request import Request
from .result import Result

__all__ = [
    "ReconcileContext",
    "ReconcileFunc",
    "Reconciler",
    "reconcile_callable",
]

_log = get_logger("controllers.reconcile")
_EVENT_LOCK = threading.Lock()


class ReconcileContext:
    """Per-call facts and the cancellation signal, created by the worker pool for each call."""

    __slots__ = (
        "_cancelled",
        "_clock",
        "_event",
        "_log",
        "attempt",
        "controller",
        "deadline",
        "reconcile_id",
        "request",
        "resource",
    )

    def __init__(
        self,
        request: Request,
        *,
        controller: str = "",
        attempt: int = 0,
        deadline: float | None = None,
        clock: Clock = SYSTEM_CLOCK,
        resource: str = "",
        reconcile_id: str = "",
    ) -> None:
        self.request = request
        #: The controller's name (metrics label, log field).
        self.controller = controller
        #: The primary resource (``"apps/v1/deployments"``; log field); default ``request.kind``.
        self.resource = resource or request.kind
        #: Names this one call in the logs (16 random hex digits; controller-runtime's ``reconcileID``).
        self.reconcile_id = reconcile_id
        #: Failures of this key since it last succeeded (0 on a first try): the rate limiter's
        #: ``num_requeues`` when the call began.
        self.attempt = attempt
        #: ``clock.monotonic()`` time after which the call is abandoned; None: no timeout.
        self.deadline = deadline
        self._clock = clock
        self._cancelled = False
        # Created only if a thread waits: most calls never do, and an Event costs a Condition.
        self._event: threading.Event | None = None
        self._log: Any = None

    @property
    def log(self) -> Any:
        """A logger bound to the controller, the key and the reconcile id (created on first use).

        Inside a worker pool the same fields are also bound to the context, so plain
        ``structlog.get_logger().info(...)`` lines of the call carry them too."""
        if self._log is None:
            self._log = _log.bind(**self.log_fields())
        return self._log

    def log_fields(self) -> dict[str, str]:
        """The fields every log line of this call carries."""
        req = self.request
        return {
            "controller": self.controller,
            "resource": self.resource,
            "namespace": req.namespace,
            "name": req.name,
            "uid": req.uid,
            "reconcile_id": self.reconcile_id,
        }

    @property
    def cancelled(self) -> bool:
        """True once the call timed out or the controller is stopping; its result will be ignored."""
        return self._cancelled

    def cancel(self) -> None:
        """Signal cancellation (called by the worker pool)."""
        self._cancelled = True  # set before reading _event: see wait_cancelled
        event = self._event
        if event is not None:
            event.set()

    def raise_if_cancelled(self) -> None:
        """Raise ``ReconcileCancelledError`` if cancelled; a cheap check for long sync loops."""
        if self._cancelled:
            raise ReconcileCancelledError(f"reconcile of {self.request} was cancelled")

    def wait_cancelled(self, timeout: float | None = None) -> bool:
        """Block the calling *thread* up to ``timeout`` seconds (None: until cancelled); True if
        cancelled. Sync reconcilers use it instead of ``time.sleep`` so a timeout frees them at
        once. Async reconcilers are cancelled by anyio and must not call it."""
        if self._cancelled:
            return True
        with _EVENT_LOCK:
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        # cancel() sets the flag before it reads _event; if it read None, the flag is visible now.
        if self._cancelled:
            event.set()
        return event.wait(timeout)

    def remaining(self) -> float | None:
        """Seconds left before the timeout (may be <= 0); None without a timeout."""
        if self.deadline is None:
            return None
        return self.deadline - self._clock.monotonic()

    def __repr__(self) -> str:
        return f"<ReconcileContext {self.request} attempt={self.attempt} cancelled={self.cancelled}>"


ReconcileFunc: TypeAlias = Callable[
    [Request, RawObject | None, ReconcileContext], Result | Awaitable[Result | None] | None
]
"""A reconcile function: ``(request, obj_or_None, ctx) -> Result | None`` (or a coroutine function)."""


@runtime_checkable
class Reconciler(Protocol):
    """An object whose ``reconcile`` follows the contract in this module's docstring."""

    def reconcile(
        self, request: Request, obj: RawObject | None, ctx: ReconcileContext
    ) -> Result | Awaitable[Result | None] | None:
        """Drive the world towards ``obj``'s spec (``obj`` None: the object is gone)."""


def _is_async(fn: Callable[..., Any]) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - a callable object with an async __call__
    return call is not None and not inspect.isfunction(fn) and inspect.iscoroutinefunction(call)


def reconcile_callable(reconciler: Reconciler | ReconcileFunc) -> tuple[ReconcileFunc, bool]:
    """The function to call and whether it is a coroutine function. Accepts a ``Reconciler``
    object or a callable; raises ``TypeError`` for anything else."""
    method = getattr(reconciler, "reconcile", None)
    if callable(method):
        return method, _is_async(method)
    if callable(reconciler):
        return reconciler, _is_async(reconciler)
    raise TypeError(
        f"a reconciler must have a reconcile(request, obj, ctx) method or be callable, got {type(reconciler).__name__}"
    )
