"""Rate limiters that decide how long a failed item waits before its next attempt.

A limiter never sleeps: ``when(item)`` records one more failure of ``item`` and returns the delay in
seconds, which the rate-limited workqueue feeds to ``add_after``. ``forget(item)`` clears the
item's history after a success; ``num_requeues(item)`` reports it. The defaults match client-go and
controller-runtime (per-item exponential 5 ms -> 1000 s, overall token bucket 10/s burst 100, the
larger of the two wins); ``ItemFastSlowRateLimiter`` is client-go's fast-then-slow retry policy for
ported controllers; ``MaxWaitRateLimiter`` adds what they lack, a cap on any single wait, so a
flood of 10,000 failures no longer leaves the last one waiting ~16 minutes behind the bucket.
Invariant: ``when`` always returns a finite float in ``[0, cap]`` for every limiter here, whatever
the failure count (no overflow), and all limiters are safe to call from several threads at once.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from informers._tokenbucket import TokenBucket, TokenBucketStatistics
from informers.clock import SYSTEM_CLOCK, Clock

__all__ = [
    "BucketRateLimiter",
    "ItemExponentialRateLimiter",
    "ItemFastSlowRateLimiter",
    "MaxOfRateLimiter",
    "MaxWaitRateLimiter",
    "RateLimiter",
    "RateLimiterStatistics",
    "default_controller_rate_limiter",
]

# 2.0 ** 1023 is the largest power of two a float holds; beyond it ``2.0 ** n`` raises OverflowError.
_MAX_EXPONENT = 1023


@runtime_checkable
class RateLimiter(Protocol):
    """What the rate-limited workqueue needs. Implementations must be thread-safe."""

    def when(self, item: Hashable) -> float:
        """Record a failure of ``item``; return seconds to wait before retrying it (>= 0)."""

    def forget(self, item: Hashable) -> None:
        """Stop tracking ``item`` (it succeeded); its next ``when`` starts from scratch."""

    def num_requeues(self, item: Hashable) -> int:
        """How many times ``item`` has failed since it was last forgotten."""


@dataclass(frozen=True, slots=True)
class RateLimiterStatistics:
    """A snapshot of one limiter; composite limiters list their parts in ``children``."""

    kind: str
    #: Items with a failure history (memory held by per-item limiters).
    tracked_items: int
    #: ``when`` calls since construction.
    when_calls: int
    #: ``when`` results that were clipped to a cap (the exponential cap or ``max_wait``).
    capped: int
    bucket: TokenBucketStatistics | None = None
    children: tuple[RateLimiterStatistics, ...] = ()


def _statistics_of(limiter: RateLimiter) -> RateLimiterStatistics:
    # Third-party limiters need only the Protocol; describe them by name if they lack statistics().
    stats = getattr(limiter, "statistics", None)
    if callable(stats):
        result = stats()
        if isinstance(result, RateLimiterStatistics):
            return result
    return RateLimiterStatistics(kind=type(limiter).__name__, tracked_items=0, when_calls=0, capped=0)


class ItemExponentialRateLimiter:
    """Per-item exponential backoff: ``base * 2**failures`` seconds, at most ``cap``.

    ``base`` defaults to 5 ms and ``cap`` to 1000 s (client-go's controller defaults). Lower the cap
    when a stuck object should be retried more often than every ~17 minutes.
    """

    def __init__(self, base: float = 0.005, cap: float = 1000.0) -> None:
        if not (math.isfinite(base) and base >= 0):
            raise ValueError(f"base must be a finite number of seconds >= 0, got {base!r}")
        if not (math.isfinite(cap) and cap >= 0):
            raise ValueError(f"cap must be a finite number of seconds >= 0, got {cap!r}")
        self.base = float(base)
        self.cap = float(cap)
        self._lock = threading.Lock()
        self._failures: dict[Hashable, int] = {}
        self._when_calls = 0
        self._capped = 0

    def when(self, item: Hashable) -> float:
        with self._lock:
            exp = self._failures.get(item, 0)
            self._failures[item] = exp + 1
            self._when_calls += 1
            # Clamp the exponent so the power stays finite; the product may still reach inf, which
            # min() turns into the cap.
            delay = self.base * 2.0 ** min(exp, _MAX_EXPONENT)
            if delay >= self.cap:
                self._capped += 1
                return self.cap
            return delay

    def forget(self, item: Hashable) -> None:
        with self._lock:
            self._failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        with self._lock:
            return self._failures.get(item, 0)

    def statistics(self) -> RateLimiterStatistics:
        with self._lock:
            return RateLimiterStatistics(
                kind=type(self).__name__,
                tracked_items=len(self._failures),
                when_calls=self._when_calls,
                capped=self._capped,
            )


class ItemFastSlowRateLimiter:
    """Per item: the first ``max_fast_attempts`` failures wait ``fast_delay`` seconds, every later
    one ``slow_delay`` (client-go's ``NewItemFastSlowRateLimiter``).

    Use it where a failure is usually transient at first but, once it persists, is not worth
    retrying often (e.g. fast 5 ms for 3 attempts, then every 10 s). ``forget`` starts the item on
    fast delays again.
    """

    def __init__(self, fast_delay: float, slow_delay: float, max_fast_attempts: int) -> None:
        for name, value in (("fast_delay", fast_delay), ("slow_delay", slow_delay)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
        if max_fast_attempts < 0:
            raise ValueError(f"max_fast_attempts must be >= 0, got {max_fast_attempts!r}")
        self.fast_delay = float(fast_delay)
        self.slow_delay = float(slow_delay)
        self.max_fast_attempts = max_fast_attempts
        self._lock = threading.Lock()
        self._failures: dict[Hashable, int] = {}
        self._when_calls = 0

    def when(self, item: Hashable) -> float:
        with self._lock:
            failures = self._failures.get(item, 0) + 1
            self._failures[item] = failures
            self._when_calls += 1
        return self.fast_delay if failures <= self.max_fast_attempts else self.slow_delay

    def forget(self, item: Hashable) -> None:
        with self._lock:
            self._failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        with self._lock:
            return self._failures.get(item, 0)

    def statistics(self) -> RateLimiterStatistics:
        with self._lock:
            return RateLimiterStatistics(
                kind=type(self).__name__,
                tracked_items=len(self._failures),
                when_calls=self._when_calls,
                capped=0,  # no cap: the slow delay is a policy, not a clip
            )


class BucketRateLimiter:
    """An overall limit shared by all items: ``qps`` retries per second after a ``burst``.

    Built on ``TokenBucket.reserve()``: each ``when`` takes a token (going into debt if needed) and
    returns how long until that token is due. It keeps no per-item state, so ``forget`` does nothing
    and ``num_requeues`` is always 0. ``qps <= 0`` disables it (every wait is 0).
    """

    def __init__(self, qps: float = 10.0, burst: int = 100, *, clock: Clock = SYSTEM_CLOCK) -> None:
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst!r}")
        self._bucket = TokenBucket(qps, burst, clock=clock)
        self._lock = threading.Lock()
        self._when_calls = 0

    @property
    def qps(self) -> float:
        return self._bucket.rate

    @property
    def burst(self) -> int:
        return self._bucket.burst

    def when(self, item: Hashable) -> float:
        with self._lock:
            self._when_calls += 1
        return self._bucket.reserve()

    def forget(self, item: Hashable) -> None:
        return None

    def num_requeues(self, item: Hashable) -> int:
        return 0

    def statistics(self) -> RateLimiterStatistics:
        with self._lock:
            calls = self._when_calls
        return RateLimiterStatistics(
            kind=type(self).__name__,
            tracked_items=0,
            when_calls=calls,
            capped=0,
            bucket=self._bucket.statistics(),
        )


class MaxOfRateLimiter:
    """The longest wait of several limiters; every limiter sees every call (so each keeps count)."""

    def __init__(self, *limiters: RateLimiter) -> None:
        if not limiters:
            raise ValueError("MaxOfRateLimiter needs at least one limiter")
        self.limiters: tuple[RateLimiter, ...] = limiters

    def when(self, item: Hashable) -> float:
        # A list, not a generator: every limiter must record the failure, not just until the max.
        return max([limiter.when(item) for limiter in self.limiters])

    def forget(self, item: Hashable) -> None:
        for limiter in self.limiters:
            limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return max(limiter.num_requeues(item) for limiter in self.limiters)

    def statistics(self) -> RateLimiterStatistics:
        children = tuple(_statistics_of(limiter) for limiter in self.limiters)
        return RateLimiterStatistics(
            kind=type(self).__name__,
            tracked_items=max(child.tracked_items for child in children),
            when_calls=max(child.when_calls for child in children),
            capped=sum(child.capped for child in children),
            children=children,
        )


class MaxWaitRateLimiter:
    """Caps every wait of ``inner`` at ``max_wait`` seconds.

    Use it to bound retry latency when many items fail at once: behind the default 10/s bucket the
    10,000th failure waits ~990 s, with ``max_wait=60`` it waits 60 s. The inner bucket still
    counts the reservation, so during such a flood later failures are all clipped to ``max_wait``
    until the bucket's debt is paid off: the cap trades the overall rate limit for bounded latency
    (the API client's own QPS limit still protects the apiserver).
    """

    def __init__(self, inner: RateLimiter, max_wait: float) -> None:
        if not (math.isfinite(max_wait) and max_wait >= 0):
            raise ValueError(f"max_wait must be a finite number of seconds >= 0, got {max_wait!r}")
        self.inner = inner
        self.max_wait = float(max_wait)
        self._lock = threading.Lock()
        self._when_calls = 0
        self._capped = 0

    def when(self, item: Hashable) -> float:
        delay = self.inner.when(item)
        capped = delay > self.max_wait
        with self._lock:
            self._when_calls += 1
            if capped:
                self._capped += 1
        return self.max_wait if capped else delay

    def forget(self, item: Hashable) -> None:
        self.inner.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return self.inner.num_requeues(item)

    def statistics(self) -> RateLimiterStatistics:
        inner = _statistics_of(self.inner)
        with self._lock:
            return RateLimiterStatistics(
                kind=type(self).__name__,
                tracked_items=inner.tracked_items,
                when_calls=self._when_calls,
                capped=self._capped,
                children=(inner,),
            )


def default_controller_rate_limiter(*, clock: Clock = SYSTEM_CLOCK, max_wait: float | None = None) -> RateLimiter:
    """controller-runtime's default: the larger of per-item exponential 5 ms -> 1000 s and a 10/s,
    burst-100 bucket. ``max_wait`` (seconds, default None = no cap) wraps it in
    ``MaxWaitRateLimiter``; set it when a flood of failures must not delay retries by minutes."""
    limiter: RateLimiter = MaxOfRateLimiter(
        ItemExponentialRateLimiter(0.005, 1000.0),
        BucketRateLimiter(10.0, 100, clock=clock),
    )
    if max_wait is not None:
        limiter = MaxWaitRateLimiter(limiter, max_wait)
    return limiter
