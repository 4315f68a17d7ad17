"""A work queue that can add an item later: ``add_after(item, seconds)``.

Delayed items wait in an indexed binary heap ordered by ready time; when an item is scheduled
several times before it is due, the earliest ready time wins (later ones are ignored) and its one
entry moves up in place, as in client-go's delaying queue.
A single timer thread per queue, started on the first delay and exiting when nothing is waiting (or
at shutdown, which joins it), moves due items into the queue; tests that use a ``FakeClock`` pass
``timer=False`` and call ``process_due()`` themselves, which is deterministic. Items still waiting at
shutdown are dropped, like client-go.
Invariant: each waiting item has exactly one heap entry, whose ready time is the earliest requested
since the item was last moved into the queue (an earlier request moves the entry up in place, so no
superseded entry keeps an item alive).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Hashable
from typing import Generic, TypeVar

from informers.clock import SYSTEM_CLOCK, Clock

from .workqueue import WorkQueue, WorkQueueMetrics

__all__ = ["DelayingQueue"]

_T = TypeVar("_T", bound=Hashable)

# The timer sleeps in real time; re-reading the clock at least this often (seconds) bounds the error
# when the injected clock does not run at real speed.
_MAX_TIMER_SLEEP = 1.0
# How long shutdown waits for the timer thread to exit (it only needs the queue's lock).
_JOIN_TIMEOUT = 5.0


class _Entry(Generic[_T]):
    """One waiting item: when it is due, a tie-breaker (FIFO among equal times), its heap slot."""

    __slots__ = ("ready", "seq", "item", "index")

    def __init__(self, ready: float, seq: int, item: _T) -> None:
        self.ready = ready
        self.seq = seq
        self.item = item
        self.index = -1


def _before(a: _Entry[_T], b: _Entry[_T]) -> bool:
    return a.ready < b.ready or (a.ready == b.ready and a.seq < b.seq)


class _ReadyHeap(Generic[_T]):
    """A binary min-heap of entries by (ready, seq) whose entries know their index, so a ready time
    can be moved earlier in place (client-go's ``heap.Fix``) instead of pushing a second entry.
    Invariant: ``entries[i].index == i`` and no entry sorts before its parent."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: list[_Entry[_T]] = []

    def __len__(self) -> int:
        return len(self.entries)

    def push(self, entry: _Entry[_T]) -> None:
        entry.index = len(self.entries)
        self.entries.append(entry)
        self._sift_up(entry.index)

    def pop(self) -> _Entry[_T]:
        entries = self.entries
        top = entries[0]
        last = entries.pop()
        if entries:
            entries[0] = last
            last.index = 0
            self._sift_down(0)
        top.index = -1
        return top

    def move_earlier(self, entry: _Entry[_T], ready: float, seq: int) -> None:
        """Give ``entry`` an earlier ``ready`` time; only ever moves it towards the root."""
        entry.ready = ready
        entry.seq = seq
        self._sift_up(entry.index)

    def clear(self) -> None:
        self.entries.clear()

    def _sift_up(self, i: int) -> None:
        entries = self.entries
        entry = entries[i]
        while i > 0:
            parent = (i - 1) >> 1
            if not _before(entry, entries[parent]):
                break
            entries[i] = entries[parent]
            entries[i].index = i
            i = parent
        entries[i] = entry
        entry.index = i

    def _sift_down(self, i: int) -> None:
        entries = self.entries
        n = len(entries)
        entry = entries[i]
        while (child := 2 * i + 1) < n:
            if child + 1 < n and _before(entries[child + 1], entries[child]):
                child += 1
            if not _before(entries[child], entry):
                break
            entries[i] = entries[child]
            entries[i].index = i
            i = child
        entries[i] = entry
        entry.index = i



class DelayingQueue(WorkQueue[_T]):
    """``WorkQueue`` plus ``add_after``. ``timer`` (default True) runs the timer thread; with
    False, due items move only when ``process_due()`` is called (for tests with a fake clock)."""

    def __init__(
        self,
        name: str = "",
        *,
        clock: Clock = SYSTEM_CLOCK,
        metrics: WorkQueueMetrics | None = None,
        timer: bool = True,
    ) -> None:
        super().__init__(name, clock=clock, metrics=metrics)
        self._use_timer = timer
        self._heap: _ReadyHeap[_T] = _ReadyHeap()
        self._waiting: dict[_T, _Entry[_T]] = {}  # item -> its one heap entry
        self._seq = itertools.count()
        self._timer_cond = threading.Condition(self._lock)
        self._timer: threading.Thread | None = None

    def add_after(self, item: _T, delay: float) -> None:
        """Add ``item`` once ``delay`` seconds have passed (now if ``delay <= 0``). If it is already
        waiting with an earlier ready time, this call changes nothing. Counts as a retry
        (``workqueue_retries_total``), as in client-go. Ignored after shutdown."""
        added = False
        with self._lock:
            if self._shutting_down:
                return
            self._retries += 1
            now = self._now()
            if delay <= 0:
                added = self._add_locked(item, now)
            else:
                self._schedule_locked(item, now + delay)
        metrics = self._metrics
        if metrics is not None:
            metrics.on_retry()
            if added:
                metrics.on_add()

    def _schedule_locked(self, item: _T, ready: float) -> None:
        entry = self._waiting.get(item)
        if entry is None:
            entry = self._waiting[item] = _Entry(ready, next(self._seq), item)
            self._heap.push(entry)
        elif ready < entry.ready:
            self._heap.move_earlier(entry, ready, next(self._seq))
        else:
            return  # the earlier ready time already scheduled wins
        if not self._use_timer:
            return
        if self._timer is None:
            self._timer = threading.Thread(
                target=self._run_timer, name=f"workqueue-timer-{self.name}", daemon=True
            )
            self._timer.start()  # it blocks on our lock until we release it
        elif entry.index == 0:
            self._timer_cond.notify()  # new earliest deadline: the timer must re-arm

    def process_due(self) -> int:
        """Move every item whose ready time has come into the queue; return how many became
        dirty (items already dirty are not counted). Called by the timer; call it yourself with
        ``timer=False``."""
        with self._lock:
            added = self._move_due_locked(self._now())
        metrics = self._metrics
        if metrics is not None:
            for _ in range(added):
                metrics.on_add()
        return added

    def _move_due_locked(self, now: float) -> int:
        heap = self._heap
        entries = heap.entries
        added = 0
        while entries and entries[0].ready <= now:
            item = heap.pop().item
            del self._waiting[item]
            if self._add_locked(item, now):
                added += 1
        return added

    def _run_timer(self) -> None:
        while True:
            self.process_due()
            with self._lock:
                if self._shutting_down or not self._waiting:
                    # Exit while idle; the next add_after starts a new timer (checked under lock).
                    self._heap.clear()
                    self._timer = None
                    return
                delay = self._heap.entries[0].ready - self._now()
                if delay > 0:
                    self._timer_cond.wait(min(delay, _MAX_TIMER_SLEEP))

    def next_ready_in(self) -> float | None:
        """Seconds until the earliest waiting item is due (<= 0: due now); None if none waits."""
        with self._lock:
            entries = self._heap.entries
            return entries[0].ready - self._now() if entries else None

    def _on_shutdown_locked(self) -> None:
        self._waiting.clear()
        self._heap.clear()
        self._timer_cond.notify_all()

    def _after_shutdown(self) -> None:
        with self._lock:
            timer = self._timer
        if timer is not None and timer is not threading.current_thread():
            timer.join(_JOIN_TIMEOUT)

    def _delayed_locked(self) -> int:
        return len(self._waiting)
