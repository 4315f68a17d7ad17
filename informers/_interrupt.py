"""Aborting a thread's blocking requests from another thread (stopping an informer).

A blocking HTTP request cannot be cancelled like a task: the thread sits in ``recv`` until an
answer or a timeout (60 s for a LIST, minutes for a watch waiting for its headers). An
``Interrupter`` is the owning thread's promise to be stoppable: while ``interruptible(it)`` is in
force on a thread, every request that thread makes registers how to abort it (for a real request:
shut its socket down, which wakes ``recv`` at once), retry waits wake early, and ``interrupt()``
from any thread aborts them all, now and from then on.
Invariant: after ``interrupt()`` returns, no request of the owning thread blocks for longer than it
takes to notice a shut-down socket, and no new one starts.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Iterator

from .errors import RequestInterruptedError

__all__ = ["Interrupter", "current", "interruptible"]

_ids = itertools.count()
_local = threading.local()


class Interrupter:
    """Registered aborts of one thread's in-flight requests; ``interrupt()`` is thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._aborts: dict[int, Callable[[], None]] = {}
        self._event = threading.Event()

    @property
    def interrupted(self) -> bool:
        return self._event.is_set()

    def interrupt(self) -> None:
        """Abort every registered request (again: a socket may have appeared since the last call)."""
        self._event.set()
        with self._lock:
            aborts = list(self._aborts.values())
        for abort in aborts:
            with contextlib.suppress(Exception):  # an abort races the request's own end
                abort()

    def check(self, what: str) -> None:
        if self._event.is_set():
            raise RequestInterruptedError(f"{what}: interrupted (the informer is stopping)")

    @contextlib.contextmanager
    def guard(self, abort: Callable[[], None], what: str) -> Iterator[None]:
        """Register ``abort`` for the duration of one blocking step."""
        self.check(what)
        key = next(_ids)
        with self._lock:
            self._aborts[key] = abort
        try:
            yield
        finally:
            with self._lock:
                del self._aborts[key]

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if interrupted meanwhile."""
        return self._event.wait(seconds)


def current() -> Interrupter | None:
    """The interrupter in force on the calling thread, if any."""
    interrupter: Interrupter | None = getattr(_local, "interrupter", None)
    return interrupter


@contextlib.contextmanager
def interruptible(interrupter: Interrupter) -> Iterator[Interrupter]:
    """Make the calling thread's requests abortable through ``interrupter``."""
    previous = current()
    _local.interrupter = interrupter
    try:
        yield interrupter
    finally:
        _local.interrupter = previous
