"""Fault hooks of the fake kit: injected error answers and requests held until released.

``Faults`` is consulted by ``FakeCluster`` before it serves each request that came through the
``ApiClient`` seam (never for the test helpers): the first armed ``fail_next`` entry matching the
request answers it with its status (and ``Retry-After``), else the first matching ``RequestHold``
blocks it until released. A request is matched on ``method`` (an HTTP method; ``GET`` covers lists
and watches), ``LIST``/``WATCH`` for collection reads only, or ``*``, and on a path prefix.
Invariant: an injected failure is used exactly once per ``times``, and closing releases every
held request (it then fails with ``ClientClosedError``), so no test thread stays blocked.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass

from .. import _interrupt
from ..errors import ClientClosedError, RequestInterruptedError
from ._fake_status import FakeStatus

__all__ = ["Faults", "RequestHold"]


def _matches(want: str, verb: str, method: str) -> bool:
    return want in ("*", verb, method)


@dataclass
class _Fault:
    method: str
    prefix: str
    status: int
    remaining: int
    retry_after: float | None


class RequestHold:
    """Requests matching ``method`` and ``path_prefix`` wait here until ``release()`` (or until the
    cluster closes, which fails them with ``ClientClosedError``). A context manager releases on exit."""

    def __init__(self, method: str, path_prefix: str, owner: Faults) -> None:
        self.method = method
        self.path_prefix = path_prefix
        self._cond = threading.Condition()
        self._released = False
        self._closed = False
        self._arrived = 0
        self._waiting = 0
        self._owner = owner

    def matches(self, verb: str, method: str, path: str) -> bool:
        return _matches(self.method, verb, method) and path.startswith(self.path_prefix)

    def wait_held(self, timeout: float | None = 5.0, count: int = 1) -> bool:
        """Wait until ``count`` requests in all have arrived at the hold; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._arrived >= count, timeout)

    @property
    def waiting(self) -> int:
        """Requests blocked here right now."""
        with self._cond:
            return self._waiting

    def release(self) -> None:
        """Let every held request (and later ones) through; the hold is then gone."""
        self._owner._remove(self)
        with self._cond:
            self._released = True
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def block(self, method: str, path: str) -> None:
        """Hold the calling request; like a real socket, a stopping owner's interrupter aborts it."""
        aborted = threading.Event()

        def abort() -> None:
            aborted.set()
            with self._cond:
                self._cond.notify_all()

        interrupter = _interrupt.current()
        with contextlib.ExitStack() as stack:
            if interrupter is not None:
                stack.enter_context(interrupter.guard(abort, f"{method} {path}"))
            with self._cond:
                self._arrived += 1
                self._waiting += 1
                self._cond.notify_all()
                try:
                    self._cond.wait_for(lambda: self._released or self._closed or aborted.is_set())
                finally:
                    self._waiting -= 1
        if aborted.is_set() and not self._released:
            raise RequestInterruptedError(f"{method} {path}: interrupted while held (the owner is stopping)")
        if not self._released:
            raise ClientClosedError(f"{method} {path}: the FakeCluster was closed while the request was held")

    def __enter__(self) -> RequestHold:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class Faults:
    """The armed failures and holds of one cluster; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._holds: list[RequestHold] = []
        self._closed = False

    def fail_next(self, method: str, path_prefix: str, status: int, times: int, retry_after: float | None) -> None:
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._faults.append(_Fault(method.upper(), path_prefix, status, times, retry_after))

    def hold(self, method: str, path_prefix: str) -> RequestHold:
        hold = RequestHold(method.upper(), path_prefix, self)
        with self._lock:
            self._holds.append(hold)
            closed = self._closed
        if closed:
            hold.close()
        return hold

    def before(self, verb: str, method: str, path: str) -> None:
        """Raise the injected answer for this request, or block it on a hold, or do nothing."""
        with self._lock:
            fault = next(
                (f for f in self._faults if _matches(f.method, verb, method) and path.startswith(f.prefix)), None
            )
            if fault is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
            hold = next((h for h in self._holds if h.matches(verb, method, path)), None)
        if fault is not None:
            headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            raise FakeStatus(
                fault.status, f"injected by FakeCluster.fail_next({fault.method} {fault.prefix!r})", headers=headers
            )
        if hold is not None:
            hold.block(method, path)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            holds = list(self._holds)
        for hold in holds:
            hold.close()

    def _remove(self, hold: RequestHold) -> None:
        with self._lock:
            if hold in self._holds:
                self._holds.remove(hold)
