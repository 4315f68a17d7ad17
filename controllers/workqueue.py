"""The deduplicating work queue that hands reconcile keys to workers, threads or anyio tasks alike.

Semantics follow client-go ``util/workqueue``: an item is *dirty* from ``add`` until a worker takes
it, then *processing* until ``done``. Adding a dirty item is a no-op (bursts of events collapse into
one reconcile); adding an item that is being processed marks it dirty and parks it, and ``done``
puts it back at the tail, so the change is seen by a later pass and never by two workers at once.
Items are handed out in FIFO order. One ``threading.Lock`` guards the state so producers and
consumers may be threads or anyio tasks (asyncio or trio backend). A consumer that finds the queue
empty parks a waiter: threads block on a private lock, tasks await an ``informers._bridge.Waiter``;
``add`` wakes exactly one waiter, and only when one is parked, so the hot path never crosses
threads (waking a task from another thread is one non-blocking hand-off to its loop).
Invariant: an item is never both queued and processing, and appears at most once in the queue, so
no two workers ever hold the same item.

API: ``get()`` (threads; blocks), ``await get_async()`` (tasks), ``get_nowait()``; all return the
item and raise ``QueueShutDown`` once the queue is shut down *and* empty, so a worker loop is::

    while True:
        try:
            item = queue.get()
        except QueueShutDown:
            return
        try:
            reconcile(item)
        finally:
            queue.done(item)

Documented differences from client-go (each pinned by ``tests/unit/test_workqueue_clientgo_parity.py``):

- ``get``/``get_async`` return the item and raise ``QueueShutDown`` instead of returning
  ``(item, shutdown)``; ``get`` takes an optional timeout; ``get_nowait`` (``QueueEmpty``) is ours.
- ``done`` of an item no worker holds raises ``ItemNotProcessingError``; client-go ignores it, or,
  if the item is queued, appends it a second time.
- ``shutdown_with_drain`` also waits for queued items (client-go waits only for in-flight ones),
  takes a timeout and returns whether it drained; a ``shutdown()`` meanwhile makes it return False.
- ``add`` returns nothing (some client-go revisions return ``(added, shutdown)``); there is no
  ``Find`` (``statistics().depth`` and ``.processing`` say the same), no pluggable backing queue
  (``QueueConfig.Queue`` and its ``Touch``) and no priority queue.
- Metrics: per-event hooks plus a ``statistics()`` snapshot instead of a ``MetricsProvider``; the
  unfinished-work figures are computed when read, not refreshed by a ticker goroutine.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from anyio import move_on_after
from anyio.lowlevel import checkpoint

from informers._bridge import Waiter
from informers.clock import SYSTEM_CLOCK, Clock
from informers.errors import InformerdError

__all__ = [
    "ItemNotProcessingError",
    "NoopWorkQueueMetrics",
    "QueueEmpty",
    "QueueShutDown",
    "WorkQueue",
    "WorkQueueError",
    "WorkQueueMetrics",
    "WorkQueueStatistics",
]

_T = TypeVar("_T", bound=Hashable)

_NEVER = math.inf


class WorkQueueError(InformerdError):
    """Base of the work queue's errors (under informerd's root, ``InformerdError``)."""


class QueueShutDown(WorkQueueError):
    """The queue is shut down and holds nothing more to hand out: the worker should exit."""


class QueueEmpty(WorkQueueError):
    """``get_nowait`` found nothing ready (the queue is still running)."""


class ItemNotProcessingError(WorkQueueError):
    """``done`` was called for an item no worker holds (a second ``done``, or one never taken)."""


class WorkQueueMetrics(Protocol):
    """Hooks for the metrics exporter (histograms need every observation; gauges and counters can
    also be read from ``statistics()`` at scrape time). Called outside the queue's lock, on the
    thread or task that called the queue; they must be fast and must not raise."""

    def on_add(self) -> None:
        """An item became dirty (``workqueue_adds_total``)."""

    def on_get(self, queued_seconds: float) -> None:
        """A worker took an item that waited this long (``workqueue_queue_duration_seconds``)."""

    def on_done(self, work_seconds: float) -> None:
        """A worker finished an item it held this long (``workqueue_work_duration_seconds``)."""

    def on_retry(self) -> None:
        """An item was scheduled with ``add_after`` (``workqueue_retries_total``)."""


class NoopWorkQueueMetrics:
    """The default: observes nothing (the queue skips the calls entirely)."""

    def on_add(self) -> None:
        return None

    def on_get(self, queued_seconds: float) -> None:
        return None

    def on_done(self, work_seconds: float) -> None:
        return None

    def on_retry(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class WorkQueueStatistics:
    """A consistent snapshot of one queue (all fields read under its lock)."""

    name: str
    #: Dirty items not yet handed out, including ones parked behind an in-flight copy
    #: (client-go's ``workqueue_depth``).
    depth: int
    #: Of those, items a worker could take right now (``len(queue)``).
    ready: int
    processing: int
    #: Items waiting in the delaying layer for their ready time (0 for a plain queue).
    delayed: int
    #: Workers (threads and tasks) parked in ``get``/``get_async``.
    waiting_getters: int
    adds_total: int
    gets_total: int
    done_total: int
    retries_total: int
    #: Sum over in-flight items of the time since they were taken (seconds).
    unfinished_work_seconds: float
    #: The longest time any in-flight item has been held (seconds).
    longest_running_processor_seconds: float
    shutting_down: bool
    draining: bool


class _ThreadWaiter:
    """A parked thread: blocks on a lock that the waker releases."""

    __slots__ = ("_gate",)

    def __init__(self) -> None:
        self._gate = threading.Lock()
        self._gate.acquire()

    def wake(self) -> bool:
        self._gate.release()
        return True

    def block(self, timeout: float | None) -> None:
        self._gate.acquire(True, -1 if timeout is None else max(timeout, 0.0))


# A parked task waits on the bridge's Waiter: woken in place on its loop's thread, through one
# non-blocking loop hand-off from any other thread, on asyncio and trio alike.
_Waiter = _ThreadWaiter | Waiter


def _wake_one(waiters: deque[_Waiter]) -> None:
    while waiters:
        if waiters.popleft().wake():
            return


def _wake_all(waiters: deque[_Waiter]) -> None:
    while waiters:
        waiters.popleft().wake()


def _unregister(waiters: deque[_Waiter], waiter: _Waiter) -> bool:
    """Remove ``waiter``; False if a waker already popped it (it was woken)."""
    try:
        waiters.remove(waiter)
    except ValueError:
        return False
    return True


class WorkQueue(Generic[_T]):
    """A fair, deduplicating work queue (client-go's ``workqueue.Type``).

    ``name`` labels metrics and messages. ``clock`` (default the system clock) times queue latency
    and work duration; in a delaying queue it also says when a delayed item is due. ``metrics``
    receives per-event observations.
    """

    def __init__(
        self,
        name: str = "",
        *,
        clock: Clock = SYSTEM_CLOCK,
        metrics: WorkQueueMetrics | None = None,
    ) -> None:
        self.name = name
        self._clock = clock
        self._now = clock.monotonic
        # Skip hook calls entirely when nobody listens: they sit on the hot path.
        self._metrics = None if isinstance(metrics, NoopWorkQueueMetrics) else metrics
        self._lock = threading.Lock()
        self._queue: deque[_T] = deque()
        self._dirty: dict[_T, float] = {}  # item -> when it became dirty (for queue latency)
        self._processing: dict[_T, float] = {}  # item -> when a worker took it
        self._getters: deque[_Waiter] = deque()
        self._drain_waiters: deque[_Waiter] = deque()
        # When the earliest delayed item is due (a delaying layer keeps it; never for a plain
        # queue). Every locked operation compares the clock with it first and, once it has
        # passed, moves due items in: no timer thread, and one float comparison when none is due.
        self._next_due = _NEVER
        self._shutting_down = False
        self._draining = False
        self._adds = 0
        self._gets = 0
        self._dones = 0
        self._retries = 0

    # -- delaying-layer hooks (no-ops here) --------------------------------------------------

    def _move_due_locked(self, now: float) -> int:
        """Move every delayed item due at ``now`` into the queue; return how many became dirty."""
        return 0

    def _park_timeout_locked(self, now: float) -> float | None:
        """How long (real seconds) a getter may park before it must look at the clock again;
        None: until woken."""
        return None

    def _catch_up_locked(self) -> tuple[float, int]:
        """Read the clock and move what is due; returns (now, items that became dirty)."""
        now = self._now()
        return now, (self._move_due_locked(now) if now >= self._next_due else 0)

    def _report_adds(self, count: int) -> None:
        metrics = self._metrics
        if metrics is not None:
            for _ in range(count):
                metrics.on_add()

    # -- producers ---------------------------------------------------------------------------

    def add(self, item: _T) -> None:
        """Mark ``item`` dirty. A no-op if it is already waiting or the queue is shut down."""
        added: int
        with self._lock:
            now = self._now()
            if now < self._next_due:
                added = self._add_locked(item, now)
            else:  # due delayed items go first, so they keep their place before this one
                added = self._move_due_locked(now) + self._add_locked(item, now)
        if added and self._metrics is not None:
            self._report_adds(added)

    def _add_locked(self, item: _T, now: float) -> bool:
        if self._shutting_down or item in self._dirty:
            return False
        self._dirty[item] = now
        self._adds += 1
        if item not in self._processing:  # else done() queues it
            self._queue.append(item)
            if self._getters:
                _wake_one(self._getters)
        return True

    # -- consumers ---------------------------------------------------------------------------

    def _take_locked(self, now: float) -> tuple[_T, float]:
        item = self._queue.popleft()
        queued = now - self._dirty.pop(item)
        self._processing[item] = now
        self._gets += 1
        return item, queued

    def _shutdown_error(self) -> QueueShutDown:
        return QueueShutDown(f"work queue {self.name!r} is shut down and empty")

    def _leave_locked(self, woken: bool) -> None:
        """A getter leaves without taking an item (cancelled, interrupted, timed out). It must not
        swallow a wake-up: if it was woken while items are queued, or if delayed items wait
        (parked getters are what moves them, and this one may have been the one keeping time),
        wake another getter in its place."""
        if self._getters and ((woken and self._queue) or self._next_due != _NEVER):
            _wake_one(self._getters)

    def get_nowait(self) -> _T:
        """Take the next ready item; raise ``QueueEmpty`` if none, ``QueueShutDown`` if none and
        the queue is shut down."""
        error: WorkQueueError | None
        with self._lock:
            now = self._now()
            moved = self._move_due_locked(now) if now >= self._next_due else 0
            if self._queue:
                item, queued = self._take_locked(now)
                error = None
            elif self._shutting_down:
                error = self._shutdown_error()
            else:
                error = QueueEmpty(f"work queue {self.name!r} has no ready item")
        if moved:
            self._report_adds(moved)
        if error is not None:
            raise error
        if self._metrics is not None:
            self._metrics.on_get(queued)
        return item

    def get(self, timeout: float | None = None) -> _T:
        """Block the calling thread until an item is ready and take it. Never call it on the
        event loop's thread (use ``get_async``). ``timeout`` is in real seconds (None: forever);
        on expiry ``TimeoutError`` is raised. After shutdown, queued items are still handed out;
        then ``QueueShutDown`` is raised."""
        deadline = None if timeout is None else time.monotonic() + timeout
        moved = 0
        try:
            with self._lock:
                while True:
                    now = self._now()
                    if now >= self._next_due:
                        moved += self._move_due_locked(now)
                    if self._queue:
                        item, queued = self._take_locked(now)
                        break
                    if self._shutting_down:
                        raise self._shutdown_error()
                    park = self._park_timeout_locked(now)
                    if deadline is not None:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            self._leave_locked(False)
                            raise TimeoutError(f"no item in work queue {self.name!r} after {timeout} s")
                        park = remaining if park is None else min(park, remaining)
                    waiter = _ThreadWaiter()
                    self._getters.append(waiter)
                    self._lock.release()
                    try:
                        waiter.block(park)
                    except BaseException:
                        self._lock.acquire()  # the with-block releases it on the way out
                        self._leave_locked(not _unregister(self._getters, waiter))
                        raise
                    self._lock.acquire()
                    _unregister(self._getters, waiter)  # still registered only if it timed out
        finally:
            if moved:
                self._report_adds(moved)
        if self._metrics is not None:
            self._metrics.on_get(queued)
        return item

    async def get_async(self) -> _T:
        """Wait (as an anyio task) until an item is ready and take it; otherwise as ``get``.
        Always a checkpoint: it yields to the event loop once even when an item is ready, so a
        worker whose reconcile never awaits cannot starve the loop (a worker that wants to skip
        that yield may try ``get_nowait`` first). Cancellation never loses an item: the item is
        taken after the last await."""
        yielded = False
        waiter: Waiter | None = None
        park: float | None = None
        moved = 0
        try:
            while True:
                with self._lock:
                    if waiter is not None:
                        if not waiter.woken:  # its park timed out: look at the clock
                            _unregister(self._getters, waiter)
                        waiter = None
                    if self._next_due != _NEVER:  # a plain queue skips the clock read
                        moved += self._catch_up_locked()[1]
                    if self._queue:
                        if yielded:
                            item, queued = self._take_locked(self._now())
                            break
                    elif self._shutting_down:
                        raise self._shutdown_error()
                    else:
                        park = self._park_timeout_locked(self._now())
                        waiter = Waiter()
                        self._getters.append(waiter)
                if waiter is None:
                    await checkpoint()
                else:
                    try:
                        if park is None:
                            await waiter.wait()
                        else:
                            with move_on_after(park):
                                await waiter.wait()
                    except BaseException:
                        with self._lock:
                            self._leave_locked(not _unregister(self._getters, waiter))
                        raise
                yielded = True
        finally:
            if moved:
                self._report_adds(moved)
        if self._metrics is not None:
            self._metrics.on_get(queued)
        return item

    def done(self, item: _T) -> None:
        """Release ``item`` after processing. If it was added meanwhile, it is queued again.
        Raises ``ItemNotProcessingError`` if no worker holds it."""
        with self._lock:
            # Due items first, while ``item`` still counts as processing: if it is one of them,
            # it is parked and queued below exactly once.
            now = self._now()
            moved = self._move_due_locked(now) if now >= self._next_due else 0
            started = self._processing.pop(item, None)
            if started is not None:
                self._dones += 1
                if item in self._dirty:
                    self._queue.append(item)
                    if self._getters:
                        _wake_one(self._getters)
                elif self._draining and not self._processing and not self._queue:
                    _wake_all(self._drain_waiters)
        if moved:
            self._report_adds(moved)
        if started is None:
            raise ItemNotProcessingError(f"done({item!r}) on work queue {self.name!r}, which no worker holds")
        if self._metrics is not None:
            self._metrics.on_done(now - started)

    # -- shutdown ----------------------------------------------------------------------------

    def _on_shutdown_locked(self) -> None:
        """Subclass hook, called once under the lock when shutdown begins."""

    def _begin_shutdown_locked(self, *, drain: bool) -> None:
        self._draining = drain
        if not self._shutting_down:
            self._shutting_down = True
            self._on_shutdown_locked()
        # Every parked getter re-checks: it takes a queued item if any, else raises QueueShutDown.
        _wake_all(self._getters)
        if not drain:
            _wake_all(self._drain_waiters)

    def shutdown(self) -> None:
        """Stop accepting items. Workers still get what is queued, then ``QueueShutDown``. A
        ``shutdown_with_drain`` in progress stops waiting and returns False (a forced stop).
        Returns at once: it only flips state and wakes waiters (safe on the event loop)."""
        with self._lock:
            self._begin_shutdown_locked(drain=False)

    def _drained_locked(self) -> bool:
        return not self._queue and not self._processing

    def shutdown_with_drain(self, timeout: float | None = None) -> bool:
        """Shut down, then block until every queued and in-flight item has been taken and marked
        done (workers must keep running). Items still waiting in a delaying layer are dropped.
        Returns True once drained; False on ``timeout`` (real seconds) or if ``shutdown()`` forces
        the stop meanwhile. Unlike client-go it also waits for queued items, not only in-flight."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._begin_shutdown_locked(drain=True)
            while True:
                if self._drained_locked():
                    return True
                remaining = None
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                if not self._draining or (remaining is not None and remaining <= 0):
                    return False
                waiter = _ThreadWaiter()
                self._drain_waiters.append(waiter)
                self._lock.release()
                try:
                    waiter.block(remaining)
                finally:
                    self._lock.acquire()
                    _unregister(self._drain_waiters, waiter)

    async def shutdown_with_drain_async(self) -> bool:
        """``shutdown_with_drain`` for tasks; bound it with ``anyio.fail_after`` if needed."""
        with self._lock:
            self._begin_shutdown_locked(drain=True)
        while True:
            with self._lock:
                if self._drained_locked():
                    return True
                if not self._draining:
                    return False
                waiter = Waiter()
                self._drain_waiters.append(waiter)
            try:
                await waiter.wait()
            finally:
                with self._lock:
                    _unregister(self._drain_waiters, waiter)

    def shutting_down(self) -> bool:
        with self._lock:
            return self._shutting_down

    # -- introspection -----------------------------------------------------------------------

    def __len__(self) -> int:
        """Items ready to be handed out now (not parked, not delayed)."""
        with self._lock:
            _, moved = self._catch_up_locked()
            ready = len(self._queue)
        if moved:
            self._report_adds(moved)
        return ready

    def _delayed_locked(self) -> int:
        return 0

    def statistics(self) -> WorkQueueStatistics:
        with self._lock:
            now, moved = self._catch_up_locked()
            unfinished = 0.0
            longest = 0.0
            for started in self._processing.values():
                held = now - started
                unfinished += held
                if held > longest:
                    longest = held
            stats = WorkQueueStatistics(
                name=self.name,
                depth=len(self._dirty),
                ready=len(self._queue),
                processing=len(self._processing),
                delayed=self._delayed_locked(),
                waiting_getters=len(self._getters),
                adds_total=self._adds,
                gets_total=self._gets,
                done_total=self._dones,
                retries_total=self._retries,
                unfinished_work_seconds=unfinished,
                longest_running_processor_seconds=longest,
                shutting_down=self._shutting_down,
                draining=self._draining,
            )
        if moved:
            self._report_adds(moved)
        return stats
