"""A thread-safe token bucket that hands out reservations instead of sleeping.

Used for client-side QPS/Burst throttling and by the workqueue's overall rate limiter. ``reserve()``
takes a token now (possibly going into debt) and returns how long the caller must wait before using
it, so callers choose how to wait (thread sleep, anyio sleep, or a delaying queue).
Invariant: reservations are granted in call order and never more than ``rate`` per second on
average after the first ``burst``; a non-positive ``rate`` means "unlimited" (always 0 wait).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .clock import SYSTEM_CLOCK, Clock

__all__ = ["TokenBucket", "TokenBucketStatistics"]


@dataclass(frozen=True, slots=True)
class TokenBucketStatistics:
    rate: float
    burst: int
    tokens: float
    reservations: int
    delayed_reservations: int
    total_delay_seconds: float


class TokenBucket:
    def __init__(self, rate: float, burst: int, *, clock: Clock = SYSTEM_CLOCK) -> None:
        """``rate`` tokens per second (<= 0: unlimited), ``burst`` tokens at most (>= 1)."""
        self.rate = float(rate)
        self.burst = max(1, int(burst))
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = float(self.burst)
        self._last = clock.monotonic()
        self._reservations = 0
        self._delayed = 0
        self._total_delay = 0.0

    @property
    def unlimited(self) -> bool:
        return self.rate <= 0

    def _refill(self, now: float) -> None:
        elapsed = now - self._last
        if elapsed > 0:
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
            self._last = now

    def reserve(self) -> float:
        """Take one token; return the seconds to wait before it may be used (0 if available)."""
        if self.unlimited:
            return 0.0
        with self._lock:
            now = self._clock.monotonic()
            self._refill(now)
            self._tokens -= 1.0
            self._reservations += 1
            if self._tokens >= 0:
                return 0.0
            delay = -self._tokens / self.rate
            self._delayed += 1
            self._total_delay += delay
            return delay

    def try_take(self) -> bool:
        """Take a token only if one is available now; never goes into debt."""
        if self.unlimited:
            return True
        with self._lock:
            self._refill(self._clock.monotonic())
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                self._reservations += 1
                return True
            return False

    def statistics(self) -> TokenBucketStatistics:
        with self._lock:
            if not self.unlimited:
                self._refill(self._clock.monotonic())
            return TokenBucketStatistics(
                rate=self.rate,
                burst=self.burst,
                tokens=self._tokens,
                reservations=self._reservations,
                delayed_reservations=self._delayed,
                total_delay_seconds=self._total_delay,
            )
