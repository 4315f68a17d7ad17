"""DelayingQueue: add_after with a fake clock and process_due(); parked getters (threads and anyio
tasks on both backends) that move due items themselves, with no timer thread (short real delays,
only to prove a parked getter wakes and re-arms); shutdown that never blocks."""

from __future__ import annotations

import random
import threading
import time

import anyio
import pytest

import controllers.delaying
from controllers.delaying import DelayingQueue, _Entry, _ReadyHeap
from controllers.workqueue import QueueEmpty, QueueShutDown
from informers._bridge import SUPPORTED_BACKENDS
from informers.clock import FakeClock


@pytest.fixture(params=SUPPORTED_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


def fake_queue() -> tuple[DelayingQueue[str], FakeClock]:
    clock = FakeClock()
    return DelayingQueue("test", clock=clock), clock


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


def test_due_item_held_by_a_worker_is_queued_once_on_done() -> None:
    """Regression (found while removing the timer): done() moved the due copy of the item it was
    releasing into the queue and then queued it again as parked."""
    q, clock = fake_queue()
    q.add("a")
    q.get_nowait()
    q.add_after("a", 1.0)
    clock.advance(1.0)
    q.done("a")  # the first look after it became due
    assert len(q) == 1 and q.statistics().depth == 1
    q.done(q.get_nowait())
    assert len(q) == 0


def test_any_use_of_the_queue_moves_due_items() -> None:
    q, clock = fake_queue()
    for name in ("len", "statistics", "next_ready_in", "get_nowait", "add", "add_after"):
        q.add_after(name, 1.0)
    clock.advance(1.0)
    assert len(q) == 6 and q.statistics().delayed == 0


def test_due_items_keep_their_place_ahead_of_later_adds() -> None:
    q, clock = fake_queue()
    q.add_after("delayed", 1.0)
    clock.advance(2.0)  # nobody looked when it became due
    q.add("later")
    assert [q.get_nowait(), q.get_nowait()] == ["delayed", "later"]


def test_queue_latency_of_a_delayed_item_counts_from_its_ready_time() -> None:
    clock = FakeClock()
    seen: list[tuple[str, float]] = []

    class Metrics:
        def on_add(self) -> None:
            seen.append(("add", 0.0))

        def on_get(self, queued_seconds: float) -> None:
            seen.append(("get", queued_seconds))

        def on_done(self, work_seconds: float) -> None:
            pass

        def on_retry(self) -> None:
            seen.append(("retry", 0.0))

    q: DelayingQueue[str] = DelayingQueue(clock=clock, metrics=Metrics())
    q.add_after("a", 1.0)
    clock.advance(4.0)  # due for 3 s before anyone looks
    assert q.get_nowait() == "a"
    assert seen == [("retry", 0.0), ("add", 0.0), ("get", pytest.approx(3.0))]


def test_parked_thread_getter_moves_a_delayed_item_when_due_with_the_real_clock() -> None:
    q: DelayingQueue[str] = DelayingQueue("real-a")
    start = time.monotonic()
    q.add_after("a", 0.02)
    assert q.get(timeout=5) == "a"
    assert time.monotonic() - start >= 0.02
    assert timer_threads() == []


def test_add_after_with_a_new_earliest_time_rearms_a_parked_thread_getter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No periodic re-read here: without the re-arm the getter would sleep until "late" is due.
    monkeypatch.setattr(controllers.delaying, "_MAX_PARK", 3600.0)
    q: DelayingQueue[str] = DelayingQueue("real-b")
    q.add_after("late", 3600.0)
    result: list[str] = []
    getter = threading.Thread(target=lambda: result.append(q.get()), daemon=True)
    getter.start()
    while q.statistics().waiting_getters == 0:
        time.sleep(0.001)
    q.add_after("soon", 0.01)
    getter.join(5)
    assert result == ["soon"]
    q.shutdown()


@pytest.mark.anyio
async def test_add_after_with_a_new_earliest_time_rearms_a_parked_task(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(controllers.delaying, "_MAX_PARK", 3600.0)
    q: DelayingQueue[str] = DelayingQueue("real-c")
    q.add_after("late", 3600.0)
    got: list[str] = []

    async def worker() -> None:
        got.append(await q.get_async())

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker)
            while q.statistics().waiting_getters == 0:
                await anyio.sleep(0)
            q.add_after("soon", 0.01)
    assert got == ["soon"]


def test_parked_getter_rereads_an_injected_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(controllers.delaying, "_MAX_PARK", 0.005)
    q, clock = fake_queue()
    q.add_after("a", 3600.0)
    result: list[str] = []
    getter = threading.Thread(target=lambda: result.append(q.get(timeout=5)))
    getter.start()
    while q.statistics().waiting_getters == 0:
        time.sleep(0.001)
    clock.advance(3600.0)  # no call into the queue: the getter must notice by itself
    getter.join(5)
    assert result == ["a"]


@pytest.mark.anyio
async def test_parked_task_rereads_an_injected_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(controllers.delaying, "_MAX_PARK", 0.005)
    q, clock = fake_queue()
    q.add_after("a", 3600.0)
    got: list[str] = []

    async def worker() -> None:
        got.append(await q.get_async())

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker)
            while q.statistics().waiting_getters == 0:
                await anyio.sleep(0)
            clock.advance(3600.0)
    assert got == ["a"]


@pytest.mark.anyio
async def test_getter_leaving_after_a_rearm_passes_the_time_keeping_on() -> None:
    """The re-arm wake-up went to a task that is cancelled before it runs; the other task, parked
    before anything was delayed (so with no deadline), must be woken in its place."""
    q: DelayingQueue[str] = DelayingQueue("real-d")
    first_scope = anyio.CancelScope()
    got: list[str] = []

    async def first() -> None:
        with first_scope:
            got.append(await q.get_async())

    async def second() -> None:
        got.append(await q.get_async())

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(first)
            while q.statistics().waiting_getters < 1:
                await anyio.sleep(0)
            tg.start_soon(second)
            while q.statistics().waiting_getters < 2:
                await anyio.sleep(0)
            scheduler = threading.Thread(target=q.add_after, args=("x", 0.01))
            scheduler.start()
            scheduler.join()  # blocks the loop on purpose: the re-arm of "first" is queued
            first_scope.cancel()
    assert got == ["x"]


def test_a_delayed_item_starts_no_thread() -> None:
    clock = FakeClock()
    q: DelayingQueue[str] = DelayingQueue(clock=clock)
    q.add_after("a", 1.0)
    assert timer_threads() == []
    clock.advance(1.0)
    assert q.get_nowait() == "a"


def timer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("workqueue-timer-")]


@pytest.mark.anyio
async def test_shutdown_on_the_event_loop_with_items_waiting_never_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Regression: shutdown() joined the queue's timer thread on the caller's thread, which can
    be the event loop's. Now there is no such thread at any point and shutdown joins nothing."""
    joins: list[str] = []
    real_join = threading.Thread.join

    def recording_join(self: threading.Thread, timeout: float | None = None) -> None:
        joins.append(self.name)
        real_join(self, timeout)

    q: DelayingQueue[str] = DelayingQueue("in-loop")
    ticks = 0
    outcomes: list[str] = []

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.sleep(0)

    async def worker() -> None:
        while True:
            try:
                item = await q.get_async()
            except QueueShutDown:
                outcomes.append("shut down")
                return
            outcomes.append(item)
            q.done(item)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker)
            tg.start_soon(worker)
            for i in range(100):
                q.add_after(f"k{i}", 3600.0 + i)
            q.add_after("soon", 0.001)
            while q.statistics().waiting_getters == 0:
                await anyio.sleep(0)
            assert timer_threads() == []
            while outcomes != ["soon"] or q.statistics().waiting_getters == 0:
                await anyio.sleep(0.001)  # "soon" falls due, the worker takes it and parks again
            assert timer_threads() == []
            monkeypatch.setattr(threading.Thread, "join", recording_join)
            q.shutdown()  # on the loop's thread, with 100 items waiting and a task parked
            monkeypatch.undo()
            assert joins == [] and timer_threads() == []
            before = ticks
            while len(outcomes) < 2:
                await anyio.sleep(0)
            assert ticks > before  # the loop kept running the other task
            tg.cancel_scope.cancel()
    assert outcomes == ["soon", "shut down"]
    stats = q.statistics()
    assert (stats.delayed, stats.retries_total) == (0, 101)
