"""A delaying work queue that retries failed items after a delay chosen by a ``RateLimiter``.

This is the queue a controller owns: a worker that fails calls ``add_rate_limited(item)`` (the
limiter records the failure and picks the delay), a worker that succeeds calls ``forget(item)`` so
the next failure starts from the shortest delay again. The default limiter is controller-runtime's
(per-item exponential 5 ms -> 1000 s, at least a 10/s burst-100 bucket).
Invariant: the queue itself keeps no failure history; ``num_requeues`` and ``forget`` are the
limiter's, so swapping limiters changes the retry policy and nothing else.

Documented differences from client-go (pinned by ``tests/unit/test_workqueue_clientgo_parity.py``
and ``tests/unit/test_workqueue_ratelimited.py``):

- ``add_rate_limited`` returns the delay it chose (client-go returns nothing).
- Once the queue is shutting down, ``add_rate_limited`` does not consult the limiter, so no failure
  is recorded for an item that will never be retried; client-go calls ``When`` (counting a failure)
  and then drops the item in ``AddAfter``.
- Delays are float seconds. ``MaxWaitRateLimiter`` is client-go's ``NewWithMaxWaitRateLimiter``,
  ``ItemFastSlowRateLimiter`` its ``NewItemFastSlowRateLimiter``.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TypeVar

from informers.clock import SYSTEM_CLOCK, Clock

from .delaying import DelayingQueue
from .ratelimit import RateLimiter, default_controller_rate_limiter
from .workqueue import WorkQueueMetrics

__all__ = ["RateLimitingQueue"]

_T = TypeVar("_T", bound=Hashable)


class RateLimitingQueue(DelayingQueue[_T]):
    """``DelayingQueue`` plus rate-limited retries. ``rate_limiter`` defaults to
    ``default_controller_rate_limiter(clock=clock)``; pass the same ``clock`` to both in tests."""

    def __init__(
        self,
        name: str = "",
        *,
        rate_limiter: RateLimiter | None = None,
        clock: Clock = SYSTEM_CLOCK,
        metrics: WorkQueueMetrics | None = None,
    ) -> None:
        super().__init__(name, clock=clock, metrics=metrics)
        self.rate_limiter: RateLimiter = (
            rate_limiter if rate_limiter is not None else default_controller_rate_limiter(clock=clock)
        )

    def add_rate_limited(self, item: _T) -> float:
        """Schedule ``item`` after the limiter's delay for it; return that delay in seconds
        (0.0 and no effect once the queue is shutting down)."""
        if self.shutting_down():
            return 0.0  # don't grow the failure history of a queue that is going away
        delay = self.rate_limiter.when(item)
        self.add_after(item, delay)
        return delay

    def forget(self, item: _T) -> None:
        """Clear ``item``'s failure history (call it after a success). Does not dequeue it."""
        self.rate_limiter.forget(item)

    def num_requeues(self, item: _T) -> int:
        """How many times ``item`` failed since it was last forgotten."""
        return self.rate_limiter.num_requeues(item)
