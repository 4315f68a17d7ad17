"""Rate limiter maths, with a fake clock (no sleeping)."""

from __future__ import annotations

import threading

import pytest

from controllers.ratelimit import (
    BucketRateLimiter,
    ItemExponentialRateLimiter,
    ItemFastSlowRateLimiter,
    MaxOfRateLimiter,
    MaxWaitRateLimiter,
    RateLimiter,
    default_controller_rate_limiter,
)
from informers.clock import FakeClock


def test_exponential_doubles_from_base_per_item() -> None:
    limiter = ItemExponentialRateLimiter(base=0.005, cap=1000.0)
    assert [limiter.when("a") for _ in range(5)] == pytest.approx([0.005, 0.01, 0.02, 0.04, 0.08])
    assert limiter.when("b") == pytest.approx(0.005)  # per item
    assert limiter.num_requeues("a") == 5
    assert limiter.num_requeues("b") == 1
    assert limiter.num_requeues("never") == 0


def test_exponential_caps_and_never_overflows() -> None:
    limiter = ItemExponentialRateLimiter(base=0.005, cap=1000.0)
    delays = [limiter.when("a") for _ in range(2000)]  # 2**1999 would overflow a float
    # 0.005 * 2**17 = 655 s is the last uncapped value; 0.005 * 2**18 = 1310 s > cap.
    assert delays[17] == pytest.approx(655.36)
    assert delays[18:] == [1000.0] * (2000 - 18)
    assert limiter.statistics().capped == 2000 - 18


def test_exponential_huge_base_is_capped_not_inf() -> None:
    limiter = ItemExponentialRateLimiter(base=1e300, cap=5.0)
    assert [limiter.when("a") for _ in range(1100)][-1] == 5.0


def test_exponential_forget_resets_the_sequence() -> None:
    limiter = ItemExponentialRateLimiter(base=1.0, cap=100.0)
    for _ in range(4):
        limiter.when("a")
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == 1.0
    assert limiter.statistics().tracked_items == 1


@pytest.mark.parametrize("kwargs", [{"base": -1.0}, {"cap": float("inf")}, {"base": float("nan")}])
def test_exponential_rejects_bad_arguments(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ItemExponentialRateLimiter(**kwargs)


def test_bucket_burst_then_one_per_qps_interval() -> None:
    clock = FakeClock()
    limiter = BucketRateLimiter(qps=10, burst=100, clock=clock)
    assert [limiter.when(i) for i in range(100)] == [0.0] * 100
    # Past the burst, each reservation is due 1/qps after the previous one.
    assert [limiter.when(i) for i in range(100, 105)] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    clock.advance(1.0)  # refills 10 tokens, 5 of which pay off the debt
    assert [limiter.when(i) for i in range(5)] == [0.0] * 5
    assert limiter.when("x") == pytest.approx(0.1)
    assert limiter.num_requeues("x") == 0
    stats = limiter.statistics()
    assert stats.when_calls == 111
    assert stats.bucket is not None and stats.bucket.reservations == 111


def test_bucket_non_positive_qps_is_unlimited() -> None:
    limiter = BucketRateLimiter(qps=0, burst=1, clock=FakeClock())
    assert {limiter.when(i) for i in range(1000)} == {0.0}


def test_max_of_takes_the_longest_and_feeds_every_limiter() -> None:
    clock = FakeClock()
    exponential = ItemExponentialRateLimiter(base=1.0, cap=100.0)
    bucket = BucketRateLimiter(qps=1, burst=2, clock=clock)
    limiter = MaxOfRateLimiter(exponential, bucket)
    assert [limiter.when("a") for _ in range(3)] == pytest.approx([1.0, 2.0, 4.0])
    # The third call went into bucket debt (1 s) even though the exponential won.
    assert bucket.statistics().bucket.reservations == 3  # type: ignore[union-attr]
    assert limiter.num_requeues("a") == 3
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == pytest.approx(2.0)  # the bucket's debt now dominates
    stats = limiter.statistics()
    assert [child.kind for child in stats.children] == [
        "ItemExponentialRateLimiter",
        "BucketRateLimiter",
    ]


def test_max_of_needs_a_limiter() -> None:
    with pytest.raises(ValueError):
        MaxOfRateLimiter()


def test_max_wait_caps_each_wait_and_delegates_history() -> None:
    limiter = MaxWaitRateLimiter(ItemExponentialRateLimiter(base=1.0, cap=1000.0), max_wait=5.0)
    assert [limiter.when("a") for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert limiter.num_requeues("a") == 5
    limiter.forget("a")
    assert limiter.when("a") == 1.0
    stats = limiter.statistics()
    assert (stats.when_calls, stats.capped) == (6, 2)


def test_ten_thousand_failures_tail_is_capped_by_max_wait() -> None:
    """The known tail: behind the 10/s bucket the last of 10,000 failures waits ~16 minutes."""
    uncapped = default_controller_rate_limiter(clock=FakeClock())
    assert [uncapped.when(i) for i in range(10_000)][-1] == pytest.approx(990.0)
    capped = default_controller_rate_limiter(clock=FakeClock(), max_wait=60.0)
    delays = [capped.when(i) for i in range(10_000)]
    assert max(delays) == 60.0
    assert delays[:100] == [pytest.approx(0.005)] * 100  # the burst is untouched


def test_default_controller_rate_limiter_matches_controller_runtime() -> None:
    clock = FakeClock()
    limiter = default_controller_rate_limiter(clock=clock)
    assert isinstance(limiter, RateLimiter)
    assert [limiter.when("a") for _ in range(3)] == pytest.approx([0.005, 0.01, 0.02])
    assert limiter.num_requeues("a") == 3
    stats = limiter.statistics()  # type: ignore[attr-defined]
    assert stats.kind == "MaxOfRateLimiter"
    bucket = stats.children[1].bucket
    assert (bucket.rate, bucket.burst) == (10.0, 100)


def test_max_of_accepts_a_plain_protocol_limiter() -> None:
    class Fixed:
        def when(self, item: object) -> float:
            return 3.0

        def forget(self, item: object) -> None:
            pass

        def num_requeues(self, item: object) -> int:
            return 7

    limiter = MaxOfRateLimiter(Fixed(), ItemExponentialRateLimiter(base=1.0))
    assert limiter.when("a") == 3.0
    assert limiter.num_requeues("a") == 7
    assert limiter.statistics().children[0].kind == "Fixed"


def test_fast_slow_waits_fast_then_slow_per_item_and_forget_restarts() -> None:
    limiter = ItemFastSlowRateLimiter(fast_delay=0.005, slow_delay=10.0, max_fast_attempts=2)
    assert isinstance(limiter, RateLimiter)
    assert [limiter.when("a") for _ in range(4)] == [0.005, 0.005, 10.0, 10.0]
    assert limiter.when("b") == 0.005  # per item
    assert (limiter.num_requeues("a"), limiter.num_requeues("b"), limiter.num_requeues("c")) == (4, 1, 0)
    limiter.forget("a")
    limiter.forget("never seen")  # no error
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == 0.005
    stats = limiter.statistics()
    assert (stats.kind, stats.tracked_items, stats.when_calls, stats.capped) == (
        "ItemFastSlowRateLimiter",
        2,
        6,
        0,
    )


def test_fast_slow_with_no_fast_attempts_is_always_slow() -> None:
    limiter = ItemFastSlowRateLimiter(0.001, 2.0, 0)
    assert [limiter.when("a") for _ in range(3)] == [2.0, 2.0, 2.0]


@pytest.mark.parametrize("args", [(-1.0, 1.0, 1), (0.0, float("inf"), 1), (float("nan"), 1.0, 1), (0.0, 1.0, -1)])
def test_fast_slow_rejects_bad_arguments(args: tuple[float, float, int]) -> None:
    with pytest.raises(ValueError):
        ItemFastSlowRateLimiter(*args)


def test_fast_slow_counts_every_failure_across_threads() -> None:
    limiter = ItemFastSlowRateLimiter(0.0, 1.0, 1000)
    threads = [threading.Thread(target=lambda: [limiter.when("a") for _ in range(500)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert limiter.num_requeues("a") == 2000
    assert limiter.when("a") == 1.0  # the 2001st failure is past the fast attempts


def test_fast_slow_inside_max_of_is_described_by_statistics() -> None:
    limiter = MaxOfRateLimiter(ItemFastSlowRateLimiter(0.005, 3.0, 1), ItemExponentialRateLimiter(0.001, 1.0))
    assert [limiter.when("a") for _ in range(3)] == [0.005, 3.0, 3.0]
    assert limiter.statistics().children[0].kind == "ItemFastSlowRateLimiter"
