"""A work queue that can add an item later: ``add_after(item, seconds)``.

Delayed items wait in a heap ordered by ready time; when an item is scheduled several times before
it is due, the earliest ready time wins (later ones are ignored), as in client-go's delaying queue.
A single timer thread per queue, started on the first delay and exiting when nothing is waiting (or
at shutdown, which joins it), moves due items into the queue; tests that use a ``FakeClock`` pass
``timer=False`` and call ``process_due()`` themselves, which is deterministic. Items still waiting at
shutdown are dropped, like client-go.
Invariant: each item has at most one live ready time, and it is the earliest requested since the
item was last moved into the queue.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Hashable
from typing import TypeVar

from informers.clock import SYSTEM_CLOCK, Clock

from .workqueue import WorkQueue, WorkQueueMetrics

__all__ = ["DelayingQueue"]

_T = TypeVar("_T", bound=Hashable)

# The timer sleeps in real time; re-reading the clock at least this often (seconds) bounds the error
# when the injected clock does not run at real speed.
_MAX_TIMER_SLEEP = 1.0
# Heap entries superseded by an earlier ready time are skipped lazily; rebuild the heap when they
# outnumber live ones by this factor so it cannot grow without bound.
_COMPACT_FACTOR = 2
_COMPACT_MIN = 64
# How long shutdown waits for the timer thread to exit (it only needs the queue's lock).
_JOIN_TIMEOUT = 5.0


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
        self._heap: list[tuple[float, int, _T]] = []
        self._waiting: dict[_T, tuple[float, int]] = {}  # item -> (ready time, heap entry seq)
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
        current = self._waiting.get(item)
        if current is not None and current[0] <= ready:
            return
        seq = next(self._seq)
        self._waiting[item] = (ready, seq)
        heapq.heappush(self._heap, (ready, seq, item))
        if len(self._heap) > _COMPACT_MIN and len(self._heap) > _COMPACT_FACTOR * len(self._waiting):
            self._heap = [(r, s, i) for i, (r, s) in self._waiting.items()]
            heapq.heapify(self._heap)
        if not self._use_timer:
            return
        if self._timer is None:
            self._timer = threading.Thread(
                target=self._run_timer, name=f"workqueue-timer-{self.name}", daemon=True
            )
            self._timer.start()  # it blocks on our lock until we release it
        elif self._heap[0][1] == seq:
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
        waiting = self._waiting
        added = 0
        while heap and heap[0][0] <= now:
            _, seq, item = heapq.heappop(heap)
            live = waiting.get(item)
            if live is None or live[1] != seq:  # superseded by an earlier ready time
                continue
            del waiting[item]
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
                delay = self._heap[0][0] - self._now()
                if delay > 0:
                    self._timer_cond.wait(min(delay, _MAX_TIMER_SLEEP))

    def next_ready_in(self) -> float | None:
        """Seconds until the earliest waiting item is due (<= 0: due now); None if none waits."""
        with self._lock:
            while self._heap:
                ready, seq, item = self._heap[0]
                live = self._waiting.get(item)
                if live is not None and live[1] == seq:
                    return ready - self._now()
                heapq.heappop(self._heap)
            return None

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
