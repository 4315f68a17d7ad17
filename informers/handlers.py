"""Event handlers of a shared informer: one listener per handler, each with its own buffer.

A listener owns an unbounded FIFO of notifications and delivers them in order to its handler: plain
functions on a dedicated thread, coroutine functions as a task on the application's event loop. So a
slow handler only grows its own buffer and never blocks the watch or another handler, and one that
raises is logged and counted and keeps receiving. The producer (the informer's reflector thread)
appends without blocking and wakes a listener only when it is asleep, so a busy listener costs no
cross-thread wake-ups. Invariant: a listener delivers every notification pushed before ``stop()``
exactly once, in push order, unless it is removed.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from .events import Notification, ObjectAdded, ObjectDeleted, ObjectUpdated
from .objects import RawObject, object_key
from .store import StoredObject
from .waiting import wait_event

__all__ = ["DeferredAdded", "DeferredUpdated", "EventHandler", "HandlerRegistration", "HandlerStatistics"]

log = structlog.get_logger(__name__)

EventHandler = Callable[..., Any] | Callable[..., Awaitable[Any]]
_names = itertools.count(1)


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


@dataclass(frozen=True, slots=True)
class DeferredAdded:
    """An ``ObjectAdded`` still in the cache's bytes: decoded on the handler's thread when delivered,
    so a 10,000-object list or replay neither stalls the reflector nor holds 10,000 dicts at once."""

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
    is_async: bool
    pending: int
    """Notifications buffered but not yet handled."""
    delivered: int
    errors: int
    synced: bool
    resync_period: float | None
    last_error: str | None


class HandlerRegistration:
    """One handler on one informer: returned by ``add_handler``, passed to ``remove_handler``.

    ``on_add(obj)``, ``on_update(old, new)`` and ``on_delete(obj)`` receive plain dicts (for a delete
    seen only by a relist, the last known state: never a tombstone); ``on_event(notification)``
    receives the full record (``ObjectDeleted.final_state_unknown`` tells the two deletes apart).
    All given callables must be plain functions, or all coroutine functions. Treat what you receive
    as read-only: the cache cannot be corrupted through it, but every handler is handed the same
    dict (copying per handler would double the cost of each event); copy before editing.
    """

    def __init__(
        self,
        *,
        on_add: EventHandler | None = None,
        on_update: EventHandler | None = None,
        on_delete: EventHandler | None = None,
        on_event: EventHandler | None = None,
        resync_period: float | None = None,
        name: str | None = None,
    ) -> None:
        callables = [c for c in (on_add, on_update, on_delete, on_event) if c is not None]
        if not callables:
            raise TypeError("a handler needs at least one of on_add, on_update, on_delete, on_event")
        kinds = {inspect.iscoroutinefunction(c) for c in callables}
        if len(kinds) > 1:
            raise TypeError("a handler's callables must be all plain functions or all coroutine functions")
        if resync_period is not None and resync_period <= 0:
            resync_period = None
        self.name = name or f"handler-{next(_names)}"
        self.is_async = kinds.pop()
        self.resync_period = None if resync_period is None else max(1.0, float(resync_period))
        self._on_add, self._on_update, self._on_delete, self._on_event = on_add, on_update, on_delete, on_event
        self._buffer: deque[Pending | _Marker] = deque()
        self._wake_thread = threading.Event()
        self._loop_wake: Callable[[], None] | None = None
        self._async_event: asyncio.Event | None = None
        self._sleeping = False
        self._synced = threading.Event()
        self._stopped = threading.Event()
        self._delivered = 0
        self._errors = 0
        self._last_error: str | None = None
        self._thread: threading.Thread | None = None
        self.next_resync: float | None = None  # managed by the informer

    # -- producer side (any thread) ------------------------------------------------------------
    def push(self, item: Pending) -> None:
        self._buffer.append(item)
        self._wake()

    def push_many(self, items: list[Pending]) -> None:
        self._buffer.extend(items)
        self._wake()

    def mark_synced(self) -> None:
        """Queue the sync marker: everything pushed before it is the initial state."""
        self._buffer.append(_SYNCED)
        self._wake()

    def stop(self, *, discard_pending: bool = False) -> None:
        """End delivery after what is buffered (or at once, dropping it, with ``discard_pending``)."""
        if discard_pending:
            self._buffer.clear()
        self._buffer.append(_STOP)
        self._wake()

    def _wake(self) -> None:
        if self.is_async:
            # Order matters: the consumer sets _sleeping before re-checking the buffer, we append
            # before reading _sleeping, so one of us always sees the other.
            if self._sleeping and self._loop_wake is not None:
                self._sleeping = False
                self._loop_wake()
        else:
            self._wake_thread.set()

    # -- state ---------------------------------------------------------------------------------
    def has_synced(self) -> bool:
        """True once every object of the initial list (or replay) has been handled."""
        return self._synced.is_set()

    async def wait_synced(self, timeout: float | None = None) -> bool:
        """Wait until ``has_synced``; returns False on timeout."""
        return await wait_event(self._synced, timeout)

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def statistics(self) -> HandlerStatistics:
        return HandlerStatistics(
            name=self.name,
            is_async=self.is_async,
            pending=sum(1 for item in list(self._buffer) if not isinstance(item, _Marker)),
            delivered=self._delivered,
            errors=self._errors,
            synced=self._synced.is_set(),
            resync_period=self.resync_period,
            last_error=self._last_error,
        )

    # -- delivery ------------------------------------------------------------------------------
    def _call_args(self, note: Notification) -> tuple[EventHandler | None, tuple[Any, ...]]:
        if self._on_event is not None:
            return self._on_event, (note,)
        if isinstance(note, ObjectAdded):
            return self._on_add, (note.obj,)
        if isinstance(note, ObjectUpdated):
            return self._on_update, (note.old, note.new)
        return self._on_delete, (note.last_state,)

    def _record_error(self, note: Notification, exc: BaseException) -> None:
        self._errors += 1
        self._last_error = f"{type(exc).__name__}: {exc}"
        key = note.key if isinstance(note, ObjectDeleted) else object_key(_object_of(note))
        log.error("event handler raised", handler=self.name, notification=type(note).__name__, key=key,
                  error=self._last_error, exc_info=exc)

    def start_thread(self, thread_name: str) -> None:
        """Deliver to a plain-function handler on its own daemon thread."""
        self._thread = threading.Thread(target=self._run_thread, name=thread_name, daemon=True)
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _next_call(self) -> tuple[EventHandler, tuple[Any, ...], Notification] | _Marker | None:
        """The next call to make: ``None`` when the buffer is empty, ``_STOP`` to end. Sync markers
        are consumed here, and a notification without a callable for it counts as delivered."""
        buffer = self._buffer
        while buffer:
            item = buffer.popleft()
            if item is _STOP:
                return _STOP
            if item is _SYNCED:
                self._synced.set()
                continue
            note = _ready(item)  # type: ignore[arg-type]
            func, args = self._call_args(note)
            if func is None:
                self._delivered += 1
                continue
            return func, args, note
        return None

    def _run_thread(self) -> None:
        try:
            while True:
                self._wake_thread.clear()
                while (step := self._next_call()) is not None:
                    if isinstance(step, _Marker):
                        return
                    func, args, note = step
                    try:
                        func(*args)
                    except Exception as exc:  # noqa: BLE001 - isolation is the point
                        self._record_error(note, exc)
                    self._delivered += 1
                self._wake_thread.wait()
        finally:
            self._stopped.set()

    async def run_async(self) -> None:
        """Deliver to a coroutine handler; run as a task on the application's event loop."""
        loop = asyncio.get_running_loop()
        event = asyncio.Event()

        def wake() -> None:
            loop.call_soon_threadsafe(event.set)

        self._loop_wake = wake
        try:
            while True:
                while (step := self._next_call()) is not None:
                    if isinstance(step, _Marker):
                        return
                    func, args, note = step
                    try:
                        await func(*args)
                    except Exception as exc:  # noqa: BLE001 - isolation is the point
                        self._record_error(note, exc)
                    self._delivered += 1
                event.clear()
                self._sleeping = True
                if self._buffer:  # pushed between the drain and _sleeping: don't sleep on it
                    self._sleeping = False
                    continue
                await event.wait()
        finally:
            self._sleeping = False
            self._loop_wake = None
            self._stopped.set()


def _ready(item: Pending) -> Notification:
    return item.materialize() if isinstance(item, DeferredAdded | DeferredUpdated) else item


def _object_of(note: Notification) -> RawObject:
    if isinstance(note, ObjectAdded):
        return note.obj
    if isinstance(note, ObjectUpdated):
        return note.new
    return note.last_state
