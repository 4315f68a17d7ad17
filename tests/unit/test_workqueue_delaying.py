"""DelayingQueue: add_after with a fake clock and process_due(); the timer thread with the real
clock (short real delays, only to prove the thread runs and stops)."""

from __future__ import annotations

import random
import threading
import time

import pytest

from controllers.delaying import DelayingQueue, _Entry, _ReadyHeap
from controllers.workqueue import QueueEmpty, QueueShutDown
from informers.clock import FakeClock


def fake_queue() -> tuple[DelayingQueue[str], FakeClock]:
    clock = FakeClock()
    return DelayingQueue("test", clock=clock, timer=False), clock


def test_item_becomes_ready_only_when_its_delay_has_passed() -> None:
    q, clock = fake_queue()
    q.add_after("a", 5.0)
    assert (len(q), q.statistics().delayed) == (0, 1)
    assert q.next_ready_in() == pytest.approx(5.0)
    clock.advance(4.9)
    assert q.process_due() == 0
    clock.advance(0.1)
    assert q.process_due() == 1
    assert (len(q), q.statistics().delayed) == (1, 0)
    assert q.get_nowait() == "a"
    assert q.next_ready_in() is None


def test_earliest_ready_time_wins() -> None:
    q, clock = fake_queue()
    q.add_after("a", 10.0)
    q.add_after("a", 3.0)
    q.add_after("a", 7.0)  # later than the current 3 s: ignored
    assert q.statistics().delayed == 1
    clock.advance(3.0)
    assert q.process_due() == 1
    q.done(q.get_nowait())
    clock.advance(10.0)
    assert q.process_due() == 0  # the superseded 7 s and 10 s entries never fire
    assert len(q) == 0


def test_a_later_delay_does_not_postpone_an_earlier_one() -> None:
    q, clock = fake_queue()
    q.add_after("a", 3.0)
    q.add_after("a", 30.0)
    clock.advance(3.0)
    assert q.process_due() == 1


def test_non_positive_delay_adds_now_and_counts_as_retry() -> None:
    q, _ = fake_queue()
    q.add_after("a", 0.0)
    q.add_after("b", -1.0)
    stats = q.statistics()
    assert (len(q), stats.delayed, stats.retries_total, stats.adds_total) == (2, 0, 2, 2)
    assert [q.get_nowait(), q.get_nowait()] == ["a", "b"]


def test_due_items_enter_in_ready_time_order() -> None:
    q, clock = fake_queue()
    q.add_after("c", 3.0)
    q.add_after("a", 1.0)
    q.add_after("b", 2.0)
    clock.advance(5.0)
    assert q.process_due() == 3
    assert [q.get_nowait() for _ in range(3)] == ["a", "b", "c"]


def test_due_item_already_waiting_is_deduplicated() -> None:
    q, clock = fake_queue()
    q.add("a")
    q.add_after("a", 1.0)
    clock.advance(1.0)
    assert q.process_due() == 0
    assert len(q) == 1


def test_due_item_being_processed_is_parked_until_done() -> None:
    q, clock = fake_queue()
    q.add("a")
    q.get_nowait()
    q.add_after("a", 1.0)
    clock.advance(1.0)
    q.process_due()
    with pytest.raises(QueueEmpty):
        q.get_nowait()
    q.done("a")
    assert q.get_nowait() == "a"


def test_shutdown_drops_delayed_items_and_ignores_new_ones() -> None:
    q, clock = fake_queue()
    q.add_after("a", 1.0)
    q.shutdown()
    q.add_after("b", 0.0)
    clock.advance(2.0)
    assert q.process_due() == 0
    stats = q.statistics()
    assert (stats.delayed, stats.retries_total) == (0, 1)
    with pytest.raises(QueueShutDown):
        q.get_nowait()


def test_repeated_earlier_reschedules_do_not_grow_the_heap_without_bound() -> None:
    q, clock = fake_queue()
    for i in range(10_000):
        q.add_after("a", 20_000.0 - i)
    assert len(q._heap) == 1  # each reschedule moved the one entry earlier
    clock.advance(10_001.0)
    assert q.process_due() == 1


def test_rescheduled_earlier_items_leave_no_superseded_heap_entries() -> None:
    """Regression: rescheduling earlier used to push a second heap entry and leave the old one
    (holding the item) until its original time: 1,000 keys moved from 100 s to 1 ms left 1,002
    entries with 1 live. Now the ready time is updated in place."""
    q, clock = fake_queue()
    q.add_after("other", 100.0)
    keys = [f"k{i}" for i in range(1000)]
    for key in keys:
        q.add_after(key, 100.0)
    for key in keys:
        q.add_after(key, 0.001)
    assert len(q._heap) == 1001  # one entry per waiting item, never more
    clock.advance(0.001)
    assert q.process_due() == 1000
    assert sorted(q.get_nowait() for _ in keys) == sorted(keys)
    assert len(q._heap) == 1 and q.statistics().delayed == 1
    clock.advance(100.0)
    assert q.process_due() == 1 and q.get_nowait() == "other"
    assert len(q._heap) == 0


@pytest.mark.parametrize("seed", range(5))
def test_ready_heap_pops_in_time_order_after_random_pushes_and_moves(seed: int) -> None:
    rng = random.Random(seed)
    heap: _ReadyHeap[int] = _ReadyHeap()
    live: dict[int, _Entry[int]] = {}
    seq = 0
    for step in range(2000):
        seq += 1
        if live and rng.random() < 0.4:
            entry = rng.choice(list(live.values()))
            heap.move_earlier(entry, entry.ready - rng.random() * 10, seq)
        elif live and rng.random() < 0.2:
            del live[heap.pop().item]
        else:
            live[step] = _Entry(rng.random() * 100, seq, step)
            heap.push(live[step])
        assert all(entry.index == i for i, entry in enumerate(heap.entries))
    popped = [heap.pop() for _ in range(len(heap))]
    assert [(e.ready, e.seq) for e in popped] == sorted((e.ready, e.seq) for e in live.values())
    assert {e.index for e in popped} == {-1}


def timer_threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"workqueue-timer-{name}"]


def test_timer_thread_moves_due_items_with_the_real_clock() -> None:
    q: DelayingQueue[str] = DelayingQueue("real-a")
    start = time.monotonic()
    q.add_after("a", 0.02)
    assert q.get(timeout=5) == "a"
    assert time.monotonic() - start >= 0.02
    q.shutdown()
    assert timer_threads("real-a") == []


def test_timer_rearms_for_an_earlier_deadline() -> None:
    q: DelayingQueue[str] = DelayingQueue("real-b")
    q.add_after("late", 30.0)
    q.add_after("soon", 0.01)
    # Without re-arming, the timer would sleep until its 1 s re-check.
    assert q.get(timeout=0.5) == "soon"
    q.shutdown()
    assert timer_threads("real-b") == []


def test_shutdown_stops_a_sleeping_timer_thread() -> None:
    q: DelayingQueue[str] = DelayingQueue("real-c")
    q.add_after("a", 3600.0)
    assert len(timer_threads("real-c")) == 1
    q.shutdown()  # joins the thread
    assert timer_threads("real-c") == []


def test_timer_thread_exits_when_nothing_is_waiting() -> None:
    q: DelayingQueue[str] = DelayingQueue("real-d")
    q.add_after("a", 0.001)
    assert q.get(timeout=5) == "a"
    deadline = time.monotonic() + 5
    while timer_threads("real-d") and time.monotonic() < deadline:
        time.sleep(0.001)
    assert timer_threads("real-d") == []
    q.add_after("b", 0.001)  # a new timer starts on demand
    assert q.get(timeout=5) == "b"
    q.shutdown()
    assert timer_threads("real-d") == []
