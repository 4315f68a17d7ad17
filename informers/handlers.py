"""Notification handlers of a shared informer: one listener per handler, each with its own buffer.

A listener delivers notifications in order to its handler in one of three ways:

* **coroutine functions** run as a task on the informer's event loop;
* **plain functions** run through the bridge (``_bridge.to_thread``) from that task, a batch of
  notifications per thread hop, on anyio's worker threads: no thread of their own. Once its
  buffer is empty the worker lingers up to ``_LINGER`` seconds for the next notification, woken by
  the producer directly, so a steady trickle of events costs one thread wake each instead of two
  hops through the event loop (which were half of a plain handler's CPU per event);
* **inline** handlers (``inline=True``, for cheap non-blocking work such as a controller's
  filter-and-enqueue) are called on the thread that produced the notification, under the
  informer's lock, with no buffer and no hop at all.

A buffered listener owns an unbounded FIFO, so a slow handler only grows its own buffer and never
blocks the watch or another handler; the producer appends without blocking and wakes the listener
only when it sleeps. A handler that raises is logged and counted and keeps receiving.
Invariant: a listener delivers every notification pushed before ``stop()`` exactly once, in push
order, unless it is removed (``stop(discard_pending=True)``).
"""

from __future__ import annotations

import inspect
import itertools
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import anyio

from . import _bridge
from ._log import get_logger
from .events import Notification, ObjectAdded, ObjectDeleted, ObjectUpdated
from .objects import RawObject, object_key
from .store import StoredObject

__all__ = [
    "DeferredAdded",
    "DeferredUpdated",
    "HandlerRegistration",
    "HandlerStatistics",
    "NotificationHandler",
    "Pending",
]

_log = get_logger(__name__)

NotificationHandler = Callable[..., Any] | Callable[..., Awaitable[Any]]
"""``on_add(obj)``, ``on_update(old, new)``, ``on_delete(obj)`` or ``on_notification(note)``."""

_names = itertools.count(1)
# A thread-delivered batch gives the loop a chance to cancel (removal, shutdown) this often.
_BATCH = 256
# How long a plain handler's worker waits for more before handing back to the loop (seconds): a
# bound on the extra wait of a cancellation, long enough to bridge the gaps of a busy watch.
_LINGER = 0.05


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


@dataclass(frozen=True, slots=True)
class DeferredAdded:
    """An ``ObjectAdded`` still in the cache's bytes: decoded by the listener when delivered, so a
    10,000-object list or replay neither stalls the reflector nor holds 10,000 dicts at once."""

    stored: StoredObject
    in_initial_list: bool

    def materialize(self) -> ObjectAdded:
        return ObjectAdded(self.stored.decode(), self.in_initial_list)


@dataclass(frozen=True, slots=True)
class DeferredUpdated:
    """An ``ObjectUpdated`` whose old (and maybe new) state is decoded only when delivered."""

    old: StoredObject
    new: StoredObject | RawObject
    is_resync: bool

    def materialize(self) -> ObjectUpdated:
        if self.new is self.old:  # a resync: one decode serves both sides
            obj = self.old.decode()
            return ObjectUpdated(obj, obj, self.is_resync)
        new = self.new.decode() if isinstance(self.new, StoredObject) else self.new
        return ObjectUpdated(self.old.decode(), new, self.is_resync)


Pending = Notification | DeferredAdded | DeferredUpdated
"""What a listener's buffer holds: ready notifications, or deferred ones decoded on delivery."""

_SYNCED = _Marker("synced")  # pushed after the initial list (or replay): reaching it means synced
_STOP = _Marker("stop")


@dataclass(frozen=True, slots=True)
class HandlerStatistics:
    name: str
    mode: str
    """``async``, ``thread`` or ``inline``."""
    pending: int
    """Notifications buffered but not yet handled."""
    delivered: int
    errors: int
    synced: bool
    resync_period: float | None
    last_error: str | None
    busy_seconds: float = 0.0
    """How long the call in progress has been running (0: none): a handler stuck in one call shows
    here, growing, while its ``pending`` grows too (nothing can cut a blocking call short)."""


class HandlerRegistration:
    """One handler on one informer: returned by ``add_handler``, passed to ``remove_handler``.

    ``on_add(obj)``, ``on_update(old, new)`` and ``on_delete(obj)`` receive plain dicts (for a delete
    seen only by a relist, the last known state: never a tombstone); ``on_notification(note)``
    receives the full record (``ObjectDeleted.final_state_unknown`` tells the two deletes apart).
    All given callables must be plain functions, or all coroutine functions. Treat what you receive
    as read-only: the cache cannot be corrupted through it, but every handler is handed the same
    dict (copying per handler would double the cost of each notification); copy before editing.
    """

    def __init__(
        self,
        *,
        on_add: NotificationHandler | None = None,
        on_update: NotificationHandler | None = None,
        on_delete: NotificationHandler | None = None,
        on_notification: NotificationHandler | None = None,
        resync_period: float | None = None,
        name: str | None = None,
        inline: bool = False,
    ) -> None:
        callables = [c for c in (on_add, on_update, on_delete, on_notification) if c is not None]
        if not callables:
            raise TypeError("a handler needs at least one of on_add, on_update, on_delete, on_notification")
        kinds = {inspect.iscoroutinefunction(c) for c in callables}
        if len(kinds) > 1:
            raise TypeError("a handler's callables must be all plain functions or all coroutine functions")
        is_async = kinds.pop()
        if inline and is_async:
            raise TypeError("an inline handler must be a plain function (it runs on the producer's thread)")
        if resync_period is not None and resync_period <= 0:
            resync_period = None
        self.name = name or f"handler-{next(_names)}"
        self.mode = "inline" if inline else "async" if is_async else "thread"
        self.resync_period = None if resync_period is None else max(1.0, float(resync_period))
        self._on_add, self._on_update, self._on_delete = on_add, on_update, on_delete
        self._on_notification = on_notification
        self._buffer: deque[Pending | _Marker] = deque()
        self._waiter: _bridge.Waiter | None = None
        self._lingering = False  # the worker thread waits on _linger_wake for the next push
        self._linger_wake = threading.Event()
        self._synced = _bridge.Flag()
        self._stopped = _bridge.Flag()
        self._discard = False
        self._busy = False  # a thread is inside the handler (read when a stop abandons it)
        self._call_started: float | None = None  # monotonic start of the call in progress
        self._delivered = 0
        self._errors = 0
        self._last_error: str | None = None
        self.next_resync: float | None = None  # managed by the informer

    @property
    def inline(self) -> bool:
        return self.mode == "inline"

    # -- producer side (the informer, under its lock) ------------------------------------------
    def push_many(self, items: Iterable[Pending]) -> None:
        if self.mode == "inline":
            for item in items:
                self._deliver_one(_ready(item))
            return
        self._buffer.extend(items)
        self._wake()

    def mark_synced(self) -> None:
        """Everything pushed so far is the initial state: synced once it has been handled."""
        if self.mode == "inline":
            self._synced.set()
            return
        self._buffer.append(_SYNCED)
        self._wake()

    def stop(self, *, discard_pending: bool = False) -> None:
        """End delivery after what is buffered (or at once, dropping it, with ``discard_pending``)."""
        if discard_pending:
            self._discard = True
            self._buffer.clear()
        if self.mode == "inline":
            self._stopped.set()
            return
        self._buffer.append(_STOP)
        self._wake()

    def _wake(self) -> None:
        # The listener publishes its waiter (or its lingering flag) and then re-checks the buffer;
        # we append and then read them: one of us always sees the other, so no wake-up is lost.
        if self._lingering:
            self._linger_wake.set()
        waiter = self._waiter
        if waiter is not None and not waiter.woken:
            waiter.wake()

    # -- state ---------------------------------------------------------------------------------
    def has_synced(self) -> bool:
        """True once every object of the initial list (or replay) has been handled."""
        return self._synced.is_set()

    async def wait_synced(self, timeout: float | None = None) -> bool:
        """Wait until ``has_synced``; returns False on timeout."""
        return await self._synced.wait(timeout)

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def statistics(self) -> HandlerStatistics:
        return HandlerStatistics(
            name=self.name,
            mode=self.mode,
            pending=sum(1 for item in list(self._buffer) if not isinstance(item, _Marker)),
            delivered=self._delivered,
            errors=self._errors,
            synced=self._synced.is_set(),
            resync_period=self.resync_period,
            last_error=self._last_error,
            busy_seconds=0.0 if (started := self._call_started) is None else max(0.0, time.monotonic() - started),
        )

    # -- delivery ------------------------------------------------------------------------------
    def _call_args(self, note: Notification) -> tuple[NotificationHandler | None, tuple[Any, ...]]:
        if self._on_notification is not None:
            return self._on_notification, (note,)
        if isinstance(note, ObjectAdded):
            return self._on_add, (note.obj,)
        if isinstance(note, ObjectUpdated):
            return self._on_update, (note.old, note.new)
        return self._on_delete, (note.last_state,)

    def _record_error(self, note: Notification, exc: BaseException) -> None:
        self._errors += 1
        self._last_error = f"{type(exc).__name__}: {exc}"
        key = note.key if isinstance(note, ObjectDeleted) else object_key(_object_of(note))
        _log.error(
            "notification handler raised",
            handler=self.name,
            notification=type(note).__name__,
            key=key,
            error=self._last_error,
            exc_info=exc,
        )

    def _deliver_one(self, note: Notification) -> None:
        """Call a plain handler for one notification, isolating its failure."""
        func, args = self._call_args(note)
        if func is not None:
            self._call_started = time.monotonic()
            try:
                func(*args)
            except Exception as exc:  # noqa: BLE001 - isolation is the point
                self._record_error(note, exc)
            finally:
                self._call_started = None
        self._delivered += 1

    def _next(self) -> Notification | _Marker | None:
        """The next notification to deliver; ``None`` when the buffer is empty, ``_STOP`` to end.
        Sync markers are consumed here."""
        buffer = self._buffer
        while buffer:
            item = buffer.popleft()
            if item is _STOP:
                return _STOP
            if item is _SYNCED:
                self._synced.set()
                continue
            return _ready(item)  # type: ignore[arg-type]
        return None

    def _deliver_batch(self) -> bool:
        """Deliver up to ``_BATCH`` buffered notifications to a plain handler (on a worker thread),
        lingering up to ``_LINGER`` s for more once the buffer is empty; True when the stop marker
        was reached."""
        deadline: float | None = None
        for _ in range(_BATCH):
            if self._discard:
                return True
            step = self._next()
            if step is None:
                if deadline is None:
                    deadline = time.monotonic() + _LINGER
                if not self._linger(deadline):
                    return False
                continue
            if step is _STOP:
                return True
            self._busy = True
            try:
                self._deliver_one(step)  # type: ignore[arg-type]
            finally:
                self._busy = False
            deadline = None  # the next quiet spell gets its own linger
        return False

    def _linger(self, deadline: float) -> bool:
        """Wait on the worker thread until something is pushed (True) or ``deadline`` (False)."""
        self._linger_wake.clear()
        self._lingering = True
        try:
            while not self._buffer and not self._discard:  # re-checked after publishing the flag
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._linger_wake.wait(remaining)
                self._linger_wake.clear()
            return True
        finally:
            self._lingering = False

    async def _deliver_async(self) -> bool:
        """Deliver what is buffered to a coroutine handler; True when the stop marker was reached."""
        while (step := self._next()) is not None:
            if step is _STOP:
                return True
            note: Notification = step  # type: ignore[assignment]
            func, args = self._call_args(note)
            if func is not None:
                self._call_started = time.monotonic()
                try:
                    await func(*args)
                except Exception as exc:  # noqa: BLE001 - isolation is the point
                    self._record_error(note, exc)
                finally:
                    self._call_started = None
            self._delivered += 1
        return False

    async def run(self) -> None:
        """Deliver until stopped; run as a task on the informer's event loop (not for inline)."""
        if self.mode == "inline":
            raise RuntimeError("inline handlers are called by the informer, they have no task")
        # One thread token per handler: its batches run one at a time (order), and a slow handler
        # never takes a token from anyone else's thread work.
        limiter = anyio.CapacityLimiter(1)
        try:
            while True:
                if self._buffer:
                    if self.mode == "async":
                        done = await self._deliver_async()
                    else:
                        # Abandoned on cancellation: a handler that hangs must not hang the
                        # informer's stop (the thread ends after its current call, see finally).
                        done = await _bridge.to_thread(self._deliver_batch, limiter=limiter, abandon_on_cancel=True)
                    if done:
                        return
                    continue
                waiter = _bridge.Waiter()
                self._waiter = waiter
                if not self._buffer:  # pushed between the drain and publishing the waiter?
                    await waiter.wait()
                self._waiter = None
        except anyio.get_cancelled_exc_class():
            self._discard = True  # an abandoned batch delivers nothing more
            if self._busy:
                _log.warning("handler still running after its informer stopped; abandoned", handler=self.name)
            raise
        finally:
            self._waiter = None
            self._stopped.set()


def _ready(item: Pending) -> Notification:
    return item.materialize() if isinstance(item, DeferredAdded | DeferredUpdated) else item


def _object_of(note: Notification) -> RawObject:
    if isinstance(note, ObjectAdded):
        return note.obj
    if isinstance(note, ObjectUpdated):
        return note.new
    return note.last_state
