"""RateLimitingQueue: add_rate_limited / forget / num_requeues with a fake clock."""

from __future__ import annotations

import pytest

from controllers.ratelimit import ItemExponentialRateLimiter
from controllers.ratelimited import RateLimitingQueue
from informers.clock import FakeClock


def test_failures_back_off_exponentially_until_forgotten() -> None:
    clock = FakeClock()
    q: RateLimitingQueue[str] = RateLimitingQueue(
        "test", rate_limiter=ItemExponentialRateLimiter(base=1.0, cap=60.0), clock=clock
    )
    q.add("a")
    q.get_nowait()
    assert q.add_rate_limited("a") == 1.0
    q.done("a")
    assert q.num_requeues("a") == 1
    assert len(q) == 0 and q.statistics().delayed == 1
    clock.advance(1.0)
    q.process_due()
    q.get_nowait()
    assert q.add_rate_limited("a") == 2.0
    q.done("a")
    clock.advance(1.0)
    assert q.process_due() == 0  # not due yet: 2 s this time
    clock.advance(1.0)
    assert q.process_due() == 1
    q.get_nowait()
    q.forget("a")
    q.done("a")
    assert q.num_requeues("a") == 0
    assert q.add_rate_limited("a") == 1.0
    assert q.statistics().retries_total == 3


def test_default_limiter_is_controller_runtimes() -> None:
    q: RateLimitingQueue[str] = RateLimitingQueue(clock=FakeClock())
    assert [q.add_rate_limited("a") for _ in range(3)] == pytest.approx([0.005, 0.01, 0.02])
    assert q.statistics().delayed == 1  # one item, earliest ready time kept


def test_no_failure_is_recorded_after_shutdown() -> None:
    limiter = ItemExponentialRateLimiter(base=1.0)
    q: RateLimitingQueue[str] = RateLimitingQueue(rate_limiter=limiter, clock=FakeClock())
    q.shutdown()
    assert q.add_rate_limited("a") == 0.0
    assert limiter.num_requeues("a") == 0
    assert q.statistics().retries_total == 0
