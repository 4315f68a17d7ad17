"""A work queue that can add an item later: ``add_after(item, seconds)``.

Delayed items wait in an indexed binary heap ordered by ready time; when an item is scheduled
several times before it is due, the earliest ready time wins (later ones are ignored) and its one
entry moves up in place, as in client-go's delaying queue. Items still waiting at shutdown are
dropped, like client-go.
There is no timer thread: due items move into the queue whenever the queue is used (``add``,
``done``, any ``get``, ``len``, ``statistics``, ``next_ready_in``, ``process_due``), in ready-time
order and ahead of anything added after they became due, and count as queued from their ready time.
A getter that finds nothing parks at most until the earliest ready time, re-reading the clock at
least every second (an injected clock need not run at real speed), and an ``add_after`` that
creates a new earliest ready time wakes one parked getter so it re-arms. So ``shutdown()`` only
flips state: it never joins anything and is safe on the event loop. With a ``FakeClock``, advance
it and call ``process_due()`` (or any of the above) to move what is due, deterministically.
Invariant: each waiting item has exactly one heap entry, whose ready time is the earliest requested
since the item was last moved into the queue (an earlier request moves the entry up in place, so no
superseded entry keeps an item alive).

Documented differences from client-go (pinned by ``tests/unit/test_workqueue_clientgo_parity.py``
and ``tests/unit/test_workqueue_delaying.py``):

- No waiting goroutine and no 10 s heartbeat: due items move when the queue is used, and parked
  getters re-read the clock at least every second. Consumers see no difference: every ``get``,
  ``len`` or ``statistics`` sees what is due at that moment.
- ``add_after`` takes effect before it returns and never blocks (client-go hands the item to its
  goroutine over a 1,000-slot channel, and blocks when that is full).
- A due item counts as queued from its ready time (``workqueue_queue_duration_seconds``), not from
  when it was moved into the queue.
- ``add_after`` of an item already queued or processing is scheduled like any other, as in upstream
  client-go (when due it is deduplicated, or parked behind the worker holding it); some client-go
  revisions drop such a delay instead.
- ``next_ready_in`` and ``process_due`` have no client-go counterpart.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

from informers.clock import SYSTEM_CLOCK, Clock

from .workqueue import _NEVER, WorkQueue, WorkQueueMetrics, _wake_one

__all__ = ["DelayingQueue"]

_T = TypeVar("_T", bound=Hashable)

# Parked getters wait in real time; re-reading the clock at least this often (seconds) bounds the
# error when the injected clock does not run at real speed.
_MAX_PARK = 1.0


class _Entry(Generic[_T]):
    """One waiting item: when it is due, a tie-breaker (FIFO among equal times), its heap slot."""

    __slots__ = ("index", "item", "ready", "seq")

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
    """``WorkQueue`` plus ``add_after``: there is no timer thread (due items move when the queue is
    used, see the module)."""

    def __init__(
        self,
        name: str = "",
        *,
        clock: Clock = SYSTEM_CLOCK,
        metrics: WorkQueueMetrics | None = None,
    ) -> None:
        super().__init__(name, clock=clock, metrics=metrics)
        self._heap: _ReadyHeap[_T] = _ReadyHeap()
        self._waiting: dict[_T, _Entry[_T]] = {}  # item -> its one heap entry
        self._seq = itertools.count()

    def add_after(self, item: _T, delay: float) -> None:
        """Add ``item`` once ``delay`` seconds have passed (now if ``delay <= 0``). If it is already
        waiting with an earlier ready time, this call changes nothing. Counts as a retry
        (``workqueue_retries_total``), as in client-go. Ignored after shutdown."""
        with self._lock:
            if self._shutting_down:
                return
            self._retries += 1
            now, added = self._catch_up_locked()
            if delay <= 0:
                added += self._add_locked(item, now)
            else:
                self._schedule_locked(item, now + delay)
        metrics = self._metrics
        if metrics is not None:
            metrics.on_retry()
            self._report_adds(added)

    def _schedule_locked(self, item: _T, ready: float) -> None:
        entry = self._waiting.get(item)
        if entry is None:
            entry = self._waiting[item] = _Entry(ready, next(self._seq), item)
            self._heap.push(entry)
        elif ready < entry.ready:
            self._heap.move_earlier(entry, ready, next(self._seq))
        else:
            return  # the earlier ready time already scheduled wins
        if entry.index == 0:
            self._next_due = ready
            # A parked getter may be waiting for a later time (or for nothing): one re-arms.
            if self._getters:
                _wake_one(self._getters)

    def process_due(self) -> int:
        """Move every item whose ready time has come into the queue; return how many became
        dirty (items already dirty are not counted). Any use of the queue does this too; call it
        after advancing a ``FakeClock`` to move items without taking one."""
        with self._lock:
            added = self._move_due_locked(self._now())
        self._report_adds(added)
        return added

    def _move_due_locked(self, now: float) -> int:
        heap = self._heap
        entries = heap.entries
        added = 0
        while entries and entries[0].ready <= now:
            entry = heap.pop()
            del self._waiting[entry.item]
            # Dirty since its ready time, so queue latency does not depend on when it was moved.
            added += self._add_locked(entry.item, entry.ready)
        self._next_due = entries[0].ready if entries else _NEVER
        return added

    def _park_timeout_locked(self, now: float) -> float | None:
        if self._next_due == _NEVER:
            return None
        return min(max(self._next_due - now, 0.0), _MAX_PARK)

    def next_ready_in(self) -> float | None:
        """Seconds until the earliest waiting item is due (items already due are moved into the
        queue first); None if none waits."""
        with self._lock:
            now, moved = self._catch_up_locked()
            entries = self._heap.entries
            ready_in = entries[0].ready - now if entries else None
        self._report_adds(moved)
        return ready_in

    def _on_shutdown_locked(self) -> None:
        self._waiting.clear()
        self._heap.clear()
        self._next_due = _NEVER

    def _delayed_locked(self) -> int:
        return len(self._waiting)
