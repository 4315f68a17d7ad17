"""The one place where threads and the event loop meet.

informerd runs blocking HTTP reads and users' plain (sync) functions in threads and everything else
as anyio tasks. Every crossing goes through this module, so there is exactly one implementation of
each hand-off:

* **thread -> loop**: ``Loop.call_soon`` schedules a callable on a running loop from any thread
  without blocking (anyio's own ``from_thread.run_sync`` blocks the caller until the loop runs it,
  which a watch reader or a queue producer must never do);
* **wake a task from anywhere**: ``Waiter`` is a one-shot wake-up a task awaits and any thread
  (or the loop itself) fires; ``Flag`` is a settable condition that tasks await and threads block
  on, with no polling;
* **loop -> thread**: ``to_thread`` runs a blocking callable on anyio's worker threads, the only
  call of ``anyio.to_thread`` in the code base;
* **no loop at all**: ``BackgroundLoop`` runs the async implementation on a private loop thread
  for the thread-friendly forms of the API (``InformerFactory.blocking()``).

Supported anyio backends: asyncio (the default) and trio. Both are exercised by the unit tests
(``tests/unit/test_bridge.py`` and the backend-parametrised informer, queue and controller tests).
Invariant: no function here blocks the event loop's thread, and a wake-up is never lost: a waiter
registered before ``set``/``wake`` is always woken, one created after it sees the state at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread

__all__ = ["SUPPORTED_BACKENDS", "BackgroundLoop", "Flag", "Loop", "Waiter", "to_thread"]

_R = TypeVar("_R")

SUPPORTED_BACKENDS = ("asyncio", "trio")
"""The anyio backends informerd runs on (``anyio.run(main, backend=...)``)."""


class Loop:
    """A handle on the running event loop that any thread may schedule work on.

    Create it on the loop's thread (``Loop.current()``). ``call_soon`` never blocks; it returns False
    when the loop has already finished, so a late wake-up is dropped rather than raised.
    """

    __slots__ = ("_schedule", "_thread", "_token", "backend")

    def __init__(self) -> None:
        token = self._token = anyio.lowlevel.current_token()  # raises NoEventLoopError off the loop
        native: Any = token.native_token
        name = token.backend_class.__module__.rsplit("_", 1)[-1]  # anyio._backends._asyncio -> asyncio
        if name not in SUPPORTED_BACKENDS:
            raise RuntimeError(f"informerd supports the anyio backends {SUPPORTED_BACKENDS}, not {name!r}")
        self.backend = name
        # asyncio: the loop itself; trio: a TrioToken. Both schedule a sync callable thread-safely.
        self._schedule: Callable[..., object] = (
            native.call_soon_threadsafe if name == "asyncio" else native.run_sync_soon
        )
        self._thread = threading.get_ident()

    @classmethod
    def current(cls) -> Loop:
        """The loop running in the calling thread (raises ``anyio.NoEventLoopError`` elsewhere).

        Cached per native loop: asking anyio for the token costs a few microseconds, and parked
        queue getters ask on every park."""
        native = _native_loop()
        if native is None:
            return cls()
        loop = _LOOPS.get(native)
        if loop is None:
            loop = _LOOPS[native] = cls()
        return loop

    def in_loop_thread(self) -> bool:
        return threading.get_ident() == self._thread

    def call_soon(self, fn: Callable[..., object], *args: Any) -> bool:
        """Run ``fn(*args)`` on the loop soon; safe from any thread. False if the loop is gone."""
        try:
            self._schedule(fn, *args)
        except RuntimeError:  # asyncio: loop closed; trio: RunFinishedError is a RuntimeError
            return False
        return True

    def run_sync(self, fn: Callable[..., _R], *args: Any) -> _R:
        """Run ``fn(*args)`` on the loop inside anyio's context (so it may start tasks) and return
        its result; blocks the calling thread until then. Runs at once on the loop's own thread.
        For rare calls (registering a handler, starting an informer), never for a hot path."""
        if self.in_loop_thread():
            return fn(*args)
        return anyio.from_thread.run_sync(fn, *args, token=self._token)


_LOOPS: weakref.WeakKeyDictionary[object, Loop] = weakref.WeakKeyDictionary()


def _native_loop() -> object | None:
    """The running asyncio loop or trio token of this thread, cheaply; None if neither (or unknown)."""
    loop = asyncio._get_running_loop()
    if loop is not None:
        return loop
    trio = sys.modules.get("trio")  # only if the application uses trio: never import it here
    if trio is not None:
        try:
            return trio.lowlevel.current_trio_token()  # type: ignore[no-any-return]
        except RuntimeError:
            return None
    return None


class Waiter:
    """A one-shot wake-up for the task that created it; ``wake()`` may be called from any thread.

    Create it in the task that will ``await wait()``. ``wake`` returns False when the loop is gone
    (the wake-up could not be delivered and the caller may pick another waiter).
    """

    __slots__ = ("_event", "_loop", "woken")

    def __init__(self) -> None:
        self._loop = Loop.current()
        self._event = anyio.Event()
        self.woken = False

    def wake(self) -> bool:
        self.woken = True
        if self._loop.in_loop_thread():
            self._event.set()
            return True
        return self._loop.call_soon(self._event.set)

    async def wait(self) -> None:
        await self._event.wait()


class Flag:
    """A condition set from any thread, awaited by tasks and waited on by threads, without polling.

    ``set()`` wakes every waiter; ``clear()`` re-arms it. Each waiting task registers a ``Waiter``
    (one loop wake-up per task, only when it is actually waiting), each waiting thread blocks on a
    private lock.
    """

    __slots__ = ("_lock", "_set", "_tasks", "_threads")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._set = False
        self._tasks: list[Waiter] = []
        self._threads: list[threading.Lock] = []

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        with self._lock:
            if self._set:
                return
            self._set = True
            tasks, self._tasks = self._tasks, []
            threads, self._threads = self._threads, []
        for waiter in tasks:
            waiter.wake()
        for gate in threads:
            gate.release()

    def clear(self) -> None:
        with self._lock:
            self._set = False

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until set or ``timeout`` seconds pass; returns whether it is set. Cancellable."""
        if self._set:
            return True
        waiter = Waiter()
        with self._lock:
            if self._set:
                return True
            self._tasks.append(waiter)
        try:
            with anyio.move_on_after(timeout):
                await waiter.wait()
        finally:
            with self._lock:
                if waiter in self._tasks:
                    self._tasks.remove(waiter)
        return self._set

    def wait_blocking(self, timeout: float | None = None) -> bool:
        """The thread form of ``wait``; never call it on the event loop's thread."""
        if self._set:
            return True
        gate = threading.Lock()
        gate.acquire()
        with self._lock:
            if self._set:
                return True
            self._threads.append(gate)
        try:
            gate.acquire(True, -1 if timeout is None else max(0.0, timeout))
        finally:
            with self._lock:
                if gate in self._threads:
                    self._threads.remove(gate)
        return self._set


async def to_thread(
    fn: Callable[..., _R],
    *args: Any,
    limiter: anyio.CapacityLimiter | None = None,
    abandon_on_cancel: bool = False,
) -> _R:
    """Run the blocking ``fn(*args)`` on a worker thread and return its result.

    ``limiter`` bounds how many such calls run at once (default: anyio's shared limiter of 40).
    With ``abandon_on_cancel`` a cancelled caller returns at once and the thread's result is
    dropped; otherwise cancellation waits for the thread (a half-done write must not be hidden).
    """
    return await anyio.to_thread.run_sync(fn, *args, limiter=limiter, abandon_on_cancel=abandon_on_cancel)


class BackgroundLoop:
    """An event loop on a private thread, for callers that have none: the thread-friendly forms
    of the async APIs run the async implementation here (one implementation, two ways in).

    Use as a context manager; ``call`` runs a function (sync or async) on the loop and returns its
    result to the calling thread; ``enter`` enters an async context manager on the loop and keeps
    it open until the ``BackgroundLoop`` exits (then they exit in reverse order).
    """

    def __init__(self, backend: str = "asyncio") -> None:
        if backend not in SUPPORTED_BACKENDS:
            raise ValueError(f"backend must be one of {SUPPORTED_BACKENDS}, got {backend!r}")
        self.backend = backend
        self._stack = contextlib.ExitStack()
        self._portal: anyio.from_thread.BlockingPortal | None = None

    def __enter__(self) -> BackgroundLoop:
        self._portal = self._stack.enter_context(anyio.from_thread.start_blocking_portal(self.backend))
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._stack.close()
        finally:
            self._portal = None

    def _require(self) -> anyio.from_thread.BlockingPortal:
        if self._portal is None:
            raise RuntimeError("the background loop is not running (use it as a context manager)")
        return self._portal

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` (a coroutine function or a plain one) on the loop; return its result."""
        return self._require().call(fn, *args)

    def enter(self, cm: contextlib.AbstractAsyncContextManager[_R]) -> _R:
        """Enter ``cm`` on the loop; it is exited when this ``BackgroundLoop`` exits."""
        return self._stack.enter_context(self._require().wrap_async_context_manager(cm))
