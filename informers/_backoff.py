"""Jittered exponential backoff for retrying lists and watches (client-go / kube-rs values).

The informer loop asks ``next_delay()`` after each failure and sleeps that long itself; this object
never sleeps. The *base* delay starts at ``initial`` and is multiplied by ``factor`` after every
failure, up to ``cap``: with the defaults 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30, 30, ... seconds.
Jitter is then added on top, as client-go's ``wait.Jitter``: the returned delay is uniform in
``[base, base * (1 + jitter))``, so ``jitter=1.0`` gives ``[base, 2 * base)`` and, once capped,
``[30, 60)`` seconds; ``jitter=0`` returns the base exactly. After ``reset_after`` seconds without a
failure (no ``next_delay()`` call), the next failure starts again from ``initial``, so a watch that
ran healthy for two minutes is retried quickly when it breaks.
Invariant: ``initial <= base <= cap`` at all times, and the returned delay is always in
``[base, base * (1 + jitter))`` (exactly ``base`` when ``jitter == 0``).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from .clock import SYSTEM_CLOCK, Clock

__all__ = ["Backoff", "BackoffStatistics"]


@dataclass(frozen=True, slots=True)
class BackoffStatistics:
    consecutive_failures: int
    """Failures since the last reset (manual or automatic)."""
    total_failures: int
    resets: int
    """Manual ``reset()`` calls plus automatic resets after ``reset_after`` healthy seconds."""
    last_delay: float | None
    """The last delay handed out, jitter included; ``None`` before the first failure."""
    next_base_delay: float
    """The base (un-jittered) delay the next failure will get, ignoring a pending auto-reset."""


class Backoff:
    def __init__(
        self,
        initial: float = 0.8,
        cap: float = 30.0,
        factor: float = 2.0,
        jitter: float = 1.0,
        reset_after: float = 120.0,
        *,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        """All durations in seconds.

        ``initial`` (default 0.8): first base delay. ``cap`` (30): largest base delay.
        ``factor`` (2.0): growth per failure. ``jitter`` (1.0): extra random fraction of the base.
        ``reset_after`` (120): healthy seconds after which the sequence restarts from ``initial``.
        ``rng``: inject a seeded ``random.Random`` for deterministic tests.
        """
        if initial <= 0:
            raise ValueError(f"initial backoff must be > 0 seconds, got {initial!r}")
        if cap < initial:
            raise ValueError(f"backoff cap ({cap!r}) must be >= initial ({initial!r})")
        if factor < 1.0:
            raise ValueError(f"backoff factor must be >= 1, got {factor!r}")
        if jitter < 0:
            raise ValueError(f"backoff jitter must be >= 0, got {jitter!r}")
        if reset_after <= 0:
            raise ValueError(f"reset_after must be > 0 seconds, got {reset_after!r}")
        self.initial = float(initial)
        self.cap = float(cap)
        self.factor = float(factor)
        self.jitter = float(jitter)
        self.reset_after = float(reset_after)
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._lock = threading.Lock()
        self._base = self.initial
        self._last_failure: float | None = None
        self._consecutive = 0
        self._total = 0
        self._resets = 0
        self._last_delay: float | None = None

    def next_delay(self) -> float:
        """Record a failure and return how many seconds to wait before the next attempt."""
        with self._lock:
            now = self._clock.monotonic()
            if self._last_failure is not None and now - self._last_failure >= self.reset_after:
                self._reset_locked()
            self._last_failure = now
            base = self._base
            self._base = min(base * self.factor, self.cap)
            delay = base + base * self.jitter * self._rng.random() if self.jitter else base
            self._consecutive += 1
            self._total += 1
            self._last_delay = delay
            return delay

    def reset(self) -> None:
        """Start again from ``initial`` (call after a clear success, e.g. a completed list)."""
        with self._lock:
            self._reset_locked()

    def _reset_locked(self) -> None:
        self._base = self.initial
        self._consecutive = 0
        self._last_failure = None
        self._resets += 1

    def statistics(self) -> BackoffStatistics:
        with self._lock:
            return BackoffStatistics(
                consecutive_failures=self._consecutive,
                total_failures=self._total,
                resets=self._resets,
                last_delay=self._last_delay,
                next_base_delay=self._base,
            )
