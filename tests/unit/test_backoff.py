"""Backoff: the client-go sequence, jitter bounds, automatic and manual reset."""

from __future__ import annotations

import random

import pytest

from informers._backoff import Backoff
from informers.clock import FakeClock


def test_base_sequence_without_jitter_doubles_up_to_the_cap() -> None:
    b = Backoff(jitter=0.0, clock=FakeClock())
    delays = [b.next_delay() for _ in range(9)]
    assert delays == pytest.approx([0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0, 30.0])


def test_jitter_one_stays_in_base_to_twice_base() -> None:
    rng = random.Random(7)
    b = Backoff(clock=FakeClock(), rng=rng)
    bases = [0.8, 1.6, 3.2, 6.4, 12.8, 25.6] + [30.0] * 200
    delays = [b.next_delay() for _ in bases]
    for base, delay in zip(bases, delays):
        assert base <= delay < 2 * base
    capped = delays[6:]
    # Jitter really spreads the capped delays over [30, 60): not all equal, both halves used.
    assert min(capped) < 40 and max(capped) > 50


def test_same_seed_gives_the_same_delays() -> None:
    a = Backoff(clock=FakeClock(), rng=random.Random(3))
    b = Backoff(clock=FakeClock(), rng=random.Random(3))
    assert [a.next_delay() for _ in range(10)] == [b.next_delay() for _ in range(10)]


def test_partial_jitter_bounds() -> None:
    b = Backoff(initial=1.0, cap=1.0, jitter=0.25, clock=FakeClock(), rng=random.Random(1))
    for _ in range(100):
        assert 1.0 <= b.next_delay() < 1.25


def test_resets_after_two_healthy_minutes() -> None:
    clock = FakeClock()
    b = Backoff(jitter=0.0, clock=clock)
    for _ in range(5):
        b.next_delay()
    clock.advance(119.9)
    assert b.next_delay() == pytest.approx(25.6)  # not yet: still growing
    clock.advance(120.0)
    assert b.next_delay() == pytest.approx(0.8)
    stats = b.statistics()
    assert stats.resets == 1 and stats.consecutive_failures == 1 and stats.total_failures == 7


def test_manual_reset_and_statistics() -> None:
    b = Backoff(jitter=0.0, clock=FakeClock())
    b.next_delay()
    b.next_delay()
    assert b.statistics().next_base_delay == pytest.approx(3.2)
    b.reset()
    assert b.next_delay() == pytest.approx(0.8)
    stats = b.statistics()
    assert stats.last_delay == pytest.approx(0.8) and stats.consecutive_failures == 1


@pytest.mark.parametrize(
    "kwargs",
    [{"initial": 0}, {"initial": 2, "cap": 1}, {"factor": 0.5}, {"jitter": -1}, {"reset_after": 0}],
)
def test_invalid_parameters_are_rejected(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)
