"""client-go ``util/workqueue`` behaviours, checked case by case against informerd's queues and limiters.

An outside port: each test names, in its docstring, the client-go test it corresponds to
(``queue_test.go``, ``delaying_queue_test.go``, ``rate_limiting_queue_test.go``,
``default_rate_limiters_test.go``), and checks the same behaviour with our own code and API. Where
our semantics differ on purpose the test asserts ours and says so; the differences are listed under
"Documented differences from client-go" in the module docstrings of ``controllers/workqueue.py``,
``controllers/delaying.py`` and ``controllers/ratelimited.py``.

client-go's fake clock is our ``FakeClock``. client-go's ``waitForWaitingQueueToFill`` and polling
``waitForAdded`` have no counterpart: our ``add_after`` takes effect before it returns and any use
of the queue (``len`` here) moves what is due. No assertion depends on how long something took.
Not ported: the benchmarks (``bench/`` measures speed), ``TestCollapse``'s ``Touch`` hook and the
custom/priority queues of ``TestNewNamedRateLimitingWithCustomQueue`` (we have no pluggable backing
queue), and ``Find`` (no such method; ``statistics()`` answers the same questions).
"""

from __future__ import annotations

import gc
import random
import threading
import time
import weakref
from collections.abc import Callable, Hashable
from typing import Any

import pytest

from controllers.delaying import DelayingQueue
from controllers.ratelimit import (
    ItemExponentialRateLimiter,
    ItemFastSlowRateLimiter,
    MaxOfRateLimiter,
    MaxWaitRateLimiter,
    RateLimiter,
)
from controllers.ratelimited import RateLimitingQueue
from controllers.workqueue import ItemNotProcessingError, QueueEmpty, QueueShutDown, WorkQueue
from informers.clock import FakeClock

# -- helpers ---------------------------------------------------------------------------------


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll for something another thread makes true (a liveness bound, not a timing check)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.001)


def in_thread(target: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    result: list[object] = []

    def run() -> None:
        try:
            result.append(target())
        except BaseException as exc:  # handed to the test
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def get_until_shut_down(q: WorkQueue[str]) -> None:
    """client-go's ``for !shuttingDown { _, shuttingDown = q.Get() }``: our ``get`` raises
    ``QueueShutDown`` once the queue is shut down and empty."""
    while True:
        try:
            q.get(timeout=10)
        except QueueShutDown:
            return


def shut_down(q: WorkQueue[Any], how: str) -> None:
    if how == "shutdown":
        q.shutdown()
    else:
        assert q.shutdown_with_drain(timeout=30)


class Big:
    """A payload only the queue would keep alive (``weakref`` tells if it was freed)."""

    def __init__(self) -> None:
        self.data = bytearray(b"hello")


# -- queue_test.go ---------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["shutdown", "shutdown_with_drain"])
def test_basic_producers_and_consumers(how: str) -> None:
    """client-go TestBasic: many producers and consumers; an add after shutdown is never handed
    out; the queue is empty once the consumers exit. (Ours: ``shutdown_with_drain`` returns only
    when the consumers have also taken every queued item.)"""
    q: WorkQueue[int | str] = WorkQueue()
    handed_out: list[int | str] = []
    lock = threading.Lock()

    def produce(i: int) -> None:
        for _ in range(50):
            q.add(i)
            time.sleep(0)

    def consume() -> None:
        while True:
            try:
                item = q.get(timeout=30)
            except QueueShutDown:
                return
            with lock:
                handed_out.append(item)
            time.sleep(0)
            q.done(item)

    producers = [threading.Thread(target=produce, args=(i,)) for i in range(20)]
    consumers = [threading.Thread(target=consume) for _ in range(10)]
    for t in producers + consumers:
        t.start()
    for t in producers:
        t.join()
    shut_down(q, how)
    q.add("added after shutdown!")
    for t in consumers:
        t.join(30)
        assert not t.is_alive()
    assert len(q) == 0
    assert "added after shutdown!" not in handed_out
    assert set(handed_out) == set(range(20))


@pytest.mark.parametrize("how", ["shutdown", "shutdown_with_drain"])
def test_add_while_processing(how: str) -> None:
    """client-go TestAddWhileProcessing: every consumer re-adds each item it gets the first time
    (the dirty-while-processing case); the queue ends empty and no item is held twice."""
    q: WorkQueue[int] = WorkQueue()
    holders: dict[int, int] = {}
    violations: list[int] = []
    lock = threading.Lock()

    def consume() -> None:
        counters: dict[int, int] = {}
        while True:
            try:
                item = q.get(timeout=30)
            except QueueShutDown:
                return
            with lock:
                if holders.get(item):
                    violations.append(item)
                holders[item] = 1
            counters[item] = counters.get(item, 0) + 1
            if counters[item] < 2:
                q.add(item)
            with lock:
                holders[item] = 0
            q.done(item)

    producers = [threading.Thread(target=q.add, args=(i,)) for i in range(50)]
    consumers = [threading.Thread(target=consume) for _ in range(10)]
    for t in producers + consumers:
        t.start()
    for t in producers:
        t.join()
    shut_down(q, how)  # re-adds after this are ignored; what is queued or parked is still handed out
    for t in consumers:
        t.join(30)
        assert not t.is_alive()
    assert len(q) == 0 and violations == []


def test_add() -> None:
    """client-go TestAdd (revisions where ``Add`` reports (added, shutdown)): a new item is added, an
    existing one is not, and nothing is added once shutdown has begun. Ours returns nothing; the
    same facts are read from ``statistics()``."""
    q: WorkQueue[str] = WorkQueue()
    q.add("foo")
    assert (q.statistics().adds_total, q.statistics().depth) == (1, 1)
    q.add("foo")
    assert (q.statistics().adds_total, q.statistics().depth) == (1, 1)
    assert q.get_nowait() == "foo"
    drainer, drained = in_thread(q.shutdown_with_drain)
    wait_until(lambda: q.statistics().draining)
    with pytest.raises(QueueShutDown):
        q.get_nowait()
    q.add("bar")
    stats = q.statistics()
    assert (stats.adds_total, stats.depth, stats.shutting_down) == (1, 0, True)
    q.done("foo")
    drainer.join(10)
    assert drained == [True]


def test_find_equivalent_through_statistics() -> None:
    """client-go TestFind (revisions that have ``Find``): an item is found while dirty and while
    processing. Ours has no ``find``: ``depth`` counts dirty items, ``processing`` held ones."""
    q: WorkQueue[str] = WorkQueue()
    stats = q.statistics()
    assert (stats.depth, stats.processing, stats.shutting_down) == (0, 0, False)
    q.add("foo")
    assert q.statistics().depth == 1
    assert q.get_nowait() == "foo"
    stats = q.statistics()
    assert (stats.depth, stats.processing, stats.shutting_down) == (0, 1, False)
    q.done("foo")


def test_len() -> None:
    """client-go TestLen: ``len`` counts distinct queued items."""
    q: WorkQueue[str] = WorkQueue()
    q.add("foo")
    assert len(q) == 1
    q.add("bar")
    assert len(q) == 2
    q.add("foo")  # should not increase the queue length
    assert len(q) == 2


def test_reinsert() -> None:
    """client-go TestReinsert: an item added back while processing is queued again by ``done``."""
    q: WorkQueue[str] = WorkQueue()
    q.add("foo")
    assert q.get_nowait() == "foo"
    q.add("foo")
    q.done("foo")
    assert q.get_nowait() == "foo"
    q.done("foo")
    assert len(q) == 0


def test_collapse() -> None:
    """client-go TestCollapse: two adds of a new item collapse into one. (client-go also checks its
    pluggable queue's ``Touch`` hook; we have no pluggable queue.)"""
    q: WorkQueue[str] = WorkQueue()
    q.add("bar")
    q.add("bar")
    assert q.get_nowait() == "bar"
    q.done("bar")
    assert len(q) == 0
    with pytest.raises(QueueEmpty):
        q.get_nowait()


def test_collapse_while_processing() -> None:
    """client-go TestCollapseWhileProcessing: two adds during processing collapse into one copy,
    which a second worker gets only after the first calls ``done``."""
    q: WorkQueue[str] = WorkQueue()
    q.add("foo")
    assert q.get_nowait() == "foo"
    q.add("foo")
    q.add("foo")

    def second_worker() -> str:
        item = q.get(timeout=10)
        q.done(item)
        return item

    worker, result = in_thread(second_worker)
    wait_until(lambda: q.statistics().waiting_getters == 1)
    assert worker.is_alive() and result == []  # blocked while the first worker holds "foo"
    q.done("foo")
    worker.join(10)
    assert result == ["foo"]
    assert len(q) == 0 and q.statistics().depth == 0


def test_queue_drainage_using_shutdown_with_drain() -> None:
    """client-go TestQueueDrainageUsingShutDownWithDrain: ``shutdown_with_drain`` returns once the
    items in flight are done; ``get`` reports shutdown meanwhile. Ours returns True."""
    q: WorkQueue[str] = WorkQueue()
    q.add("foo")
    q.add("bar")
    first, second = q.get_nowait(), q.get_nowait()
    drainer, drained = in_thread(q.shutdown_with_drain)
    get_until_shut_down(q)
    assert drained == []  # still waiting for the two items
    q.done(first)
    q.done(second)
    drainer.join(10)
    assert drained == [True]


def test_no_queue_drainage_using_shutdown() -> None:
    """client-go TestNoQueueDrainageUsingShutDown: ``shutdown`` returns at once with items in flight."""
    q: WorkQueue[str] = WorkQueue()
    q.add("foo")
    q.add("bar")
    q.get_nowait()
    q.get_nowait()
    q.shutdown()
    assert q.shutting_down() and q.statistics().processing == 2


def test_force_queue_shutdown_using_shutdown() -> None:
    """client-go TestForceQueueShutdownUsingShutDown: ``shutdown`` ends a pending
    ``shutdown_with_drain`` although nothing was marked done. Ours reports it: False."""
    q: WorkQueue[str] = WorkQueue()
    q.add("foo")
    q.add("bar")
    q.get_nowait()
    q.get_nowait()
    drainer, drained = in_thread(q.shutdown_with_drain)
    get_until_shut_down(q)
    q.shutdown()
    drainer.join(10)
    assert drained == [False]


def test_queue_drainage_using_shutdown_with_drain_with_dirty_item() -> None:
    """client-go TestQueueDrainageUsingShutDownWithDrainWithDirtyItem: an item re-added while held
    before the drain began is handed out again after ``done``, then ``get`` reports shutdown."""
    q: WorkQueue[str] = WorkQueue()
    q.add("foo")
    gotten = q.get_nowait()
    q.add("foo")
    drainer, drained = in_thread(q.shutdown_with_drain)
    get_until_shut_down(q)
    q.done(gotten)
    again = q.get(timeout=10)  # not shut down: done() queued the dirty copy
    q.done(again)
    with pytest.raises(QueueShutDown):
        q.get(timeout=10)
    drainer.join(10)
    assert drained == [True]


def test_garbage_collection() -> None:
    """client-go TestGarbageCollection: an item added, taken and done is not kept alive."""
    q: WorkQueue[Big] = WorkQueue()
    item = Big()
    ref = weakref.ref(item)
    q.add(item)
    q.done(q.get_nowait())
    del item
    gc.collect()
    assert ref() is None


def test_garbage_collection_of_an_item_rescheduled_earlier() -> None:
    """client-go TestGarbageCollection, for the delaying queue: an item scheduled far out and then
    sooner is not kept alive by its superseded ready time once it has been processed."""
    clock = FakeClock()
    q: DelayingQueue[Big] = DelayingQueue(clock=clock)
    item = Big()
    ref = weakref.ref(item)
    q.add_after(item, 100.0)
    q.add_after(item, 0.001)
    clock.advance(0.001)
    q.done(q.get_nowait())
    del item
    gc.collect()
    assert ref() is None


def test_done_on_an_item_nobody_holds_is_an_error() -> None:
    """No client-go test: its ``Done`` of a queued-but-not-taken item appends it to the queue a
    second time. Ours raises ``ItemNotProcessingError`` and leaves the queue unchanged."""
    q: WorkQueue[str] = WorkQueue()
    q.add("foo")
    with pytest.raises(ItemNotProcessingError):
        q.done("foo")
    assert len(q) == 1


# -- delaying_queue_test.go ------------------------------------------------------------------


def fake_delaying() -> tuple[DelayingQueue[str], FakeClock]:
    clock = FakeClock()
    return DelayingQueue(clock=clock), clock


def test_simple_queue() -> None:
    """client-go TestSimpleQueue: an item delayed 50 ms is added once 60 ms have passed, and
    nothing more appears after stepping 10 s past it (client-go's heartbeat; ours: any later use)."""
    q, clock = fake_delaying()
    q.add_after("foo", 0.050)
    assert len(q) == 0
    clock.advance(0.060)
    assert len(q) == 1
    q.done(q.get_nowait())
    clock.advance(10.0)
    assert len(q) == 0
    assert q.process_due() == 0 and q.next_ready_in() is None


def test_deduping() -> None:
    """client-go TestDeduping: of several delays for one item the earliest wins; a later one
    neither adds a second copy nor fires afterwards."""
    q, clock = fake_delaying()
    q.add_after("foo", 0.050)
    q.add_after("foo", 0.070)
    assert len(q) == 0
    clock.advance(0.060)
    assert len(q) == 1
    q.done(q.get_nowait())
    clock.advance(0.020)  # past the 70 ms: it was superseded and never fires
    assert len(q) == 0

    q.add_after("foo", 0.050)
    q.add_after("foo", 0.030)  # this time the earlier overrides
    assert len(q) == 0
    clock.advance(0.040)
    assert len(q) == 1
    q.done(q.get_nowait())
    clock.advance(0.020)
    assert len(q) == 0


def test_deduping_an_item_being_processed() -> None:
    """client-go TestDeduping, last part (revisions with ``Find``): ``add_after`` of an item being
    processed. Ours schedules it (as upstream client-go does): when due it is parked behind the
    worker that holds it and handed out once more after ``done``. (The revision with ``Find``
    drops such a delay instead.)"""
    q, clock = fake_delaying()
    q.add("foo")
    assert q.get_nowait() == "foo"
    q.add_after("foo", 0.005)
    assert q.statistics().delayed == 1
    clock.advance(0.005)
    assert len(q) == 0 and q.statistics().depth == 1  # due, parked behind the holder
    q.done("foo")
    assert q.get_nowait() == "foo"
    q.done("foo")
    assert len(q) == 0


def test_add_two_fire_early() -> None:
    """client-go TestAddTwoFireEarly: items come out by ready time, including one added between."""
    q, clock = fake_delaying()
    q.add_after("foo", 1.0)
    q.add_after("bar", 0.050)
    assert len(q) == 0
    clock.advance(0.060)
    assert len(q) == 1
    assert q.get_nowait() == "bar"
    q.add_after("baz", 2.0)
    clock.advance(1.0)
    assert len(q) == 1
    assert q.get_nowait() == "foo"
    clock.advance(2.0)
    assert len(q) == 1
    assert q.get_nowait() == "baz"


def test_copy_shifting() -> None:
    """client-go TestCopyShifting: items that fall due together enter in ready-time order, not in
    the order they were added."""
    q, clock = fake_delaying()
    q.add_after("foo", 1.0)
    q.add_after("bar", 0.500)
    q.add_after("baz", 0.250)
    assert len(q) == 0
    clock.advance(2.0)
    assert len(q) == 3
    assert [q.get_nowait() for _ in range(3)] == ["baz", "bar", "foo"]


def test_many_random_delays_come_out_in_ready_time_order() -> None:
    """client-go BenchmarkDelayingQueue_AddAfter's workload as a check, not a benchmark: many items
    with random delays up to 10 minutes all come out, earliest first, after 11 minutes."""
    q, clock = fake_delaying()
    rng = random.Random(7)
    delays = {f"{n}": rng.random() * 600 for n in range(2000)}
    for item, delay in delays.items():
        q.add_after(item, delay)
    clock.advance(660.0)
    out = [q.get_nowait() for _ in range(len(delays))]
    assert out == sorted(delays, key=delays.__getitem__)


# -- rate_limiting_queue_test.go -------------------------------------------------------------


def test_rate_limiting_queue() -> None:
    """client-go TestRateLimitingQueue: per-item exponential delays (1 ms, 2 ms, ...), counted by
    ``num_requeues`` and reset by ``forget``. client-go reads each scheduled ready time off its
    channel; ours returns the delay, and the waiting item keeps its earliest ready time."""
    clock = FakeClock()
    q: RateLimitingQueue[str] = RateLimitingQueue(rate_limiter=ItemExponentialRateLimiter(0.001, 1.0), clock=clock)
    assert q.add_rate_limited("one") == pytest.approx(0.001)
    assert q.next_ready_in() == pytest.approx(0.001)
    assert q.add_rate_limited("one") == pytest.approx(0.002)
    assert q.next_ready_in() == pytest.approx(0.001)  # the earlier ready time stays
    assert q.num_requeues("one") == 2
    assert q.add_rate_limited("two") == pytest.approx(0.001)
    assert q.add_rate_limited("two") == pytest.approx(0.002)
    q.forget("one")
    assert q.num_requeues("one") == 0
    assert q.add_rate_limited("one") == pytest.approx(0.001)
    assert q.statistics().retries_total == 5


def test_rate_limited_item_is_handed_out_when_due() -> None:
    """client-go TestNewNamedRateLimitingWithCustomQueue, without the custom (priority) queue we do
    not have: with the default controller limiter, an item added rate-limited is handed out."""
    clock = FakeClock()
    q: RateLimitingQueue[str] = RateLimitingQueue("cluster", clock=clock)
    delay = q.add_rate_limited("one")
    assert delay == pytest.approx(0.005)
    clock.advance(delay)
    assert q.get(timeout=10) == "one"


# -- default_rate_limiters_test.go -----------------------------------------------------------


def test_item_exponential_failure_rate_limiter() -> None:
    """client-go TestItemExponentialFailureRateLimiter."""
    limiter = ItemExponentialRateLimiter(0.001, 1.0)
    assert [limiter.when("one") for _ in range(5)] == pytest.approx([0.001, 0.002, 0.004, 0.008, 0.016])
    assert limiter.num_requeues("one") == 5
    assert [limiter.when("two") for _ in range(2)] == pytest.approx([0.001, 0.002])
    assert limiter.num_requeues("two") == 2
    limiter.forget("one")
    assert limiter.num_requeues("one") == 0
    assert limiter.when("one") == pytest.approx(0.001)


def test_item_exponential_failure_rate_limiter_overflow() -> None:
    """client-go TestItemExponentialFailureRateLimiterOverFlow: past any representable delay the
    result is the cap, never an overflow."""
    limiter = ItemExponentialRateLimiter(0.001, 1000.0)
    for _ in range(5):
        limiter.when("one")
    assert limiter.when("one") == pytest.approx(0.032)
    for _ in range(1000):
        limiter.when("overflow1")
    assert limiter.when("overflow1") == 1000.0

    limiter = ItemExponentialRateLimiter(60.0, 1000 * 3600.0)
    for _ in range(2):
        limiter.when("two")
    assert limiter.when("two") == pytest.approx(240.0)
    for _ in range(1000):
        limiter.when("overflow2")
    assert limiter.when("overflow2") == 1000 * 3600.0


def test_item_fast_slow_rate_limiter() -> None:
    """client-go TestItemFastSlowRateLimiter."""
    limiter = ItemFastSlowRateLimiter(0.005, 10.0, 3)
    assert [limiter.when("one") for _ in range(5)] == [0.005, 0.005, 0.005, 10.0, 10.0]
    assert limiter.num_requeues("one") == 5
    assert [limiter.when("two") for _ in range(2)] == [0.005, 0.005]
    assert limiter.num_requeues("two") == 2
    limiter.forget("one")
    assert limiter.num_requeues("one") == 0
    assert limiter.when("one") == 0.005


def test_max_of_rate_limiter() -> None:
    """client-go TestMaxOfRateLimiter: the longer of fast/slow and exponential, per call."""
    limiter = MaxOfRateLimiter(
        ItemFastSlowRateLimiter(0.005, 3.0, 3),
        ItemExponentialRateLimiter(0.001, 1.0),
    )
    assert [limiter.when("one") for _ in range(5)] == pytest.approx([0.005, 0.005, 0.005, 3.0, 3.0])
    assert limiter.num_requeues("one") == 5
    assert [limiter.when("two") for _ in range(2)] == pytest.approx([0.005, 0.005])
    assert limiter.num_requeues("two") == 2
    limiter.forget("one")
    assert limiter.num_requeues("one") == 0
    assert limiter.when("one") == pytest.approx(0.005)


class StepRateLimiter:
    """client-go's test helper: ``base`` for the first ``threshold`` calls (any item), then ``top``."""

    def __init__(self, base: float, top: float, threshold: int) -> None:
        self.base, self.top, self.threshold = base, top, threshold
        self.count = 0

    def when(self, item: Hashable) -> float:
        self.count += 1
        return self.base if self.count <= self.threshold else self.top

    def forget(self, item: Hashable) -> None:
        return None

    def num_requeues(self, item: Hashable) -> int:
        return 0


def test_with_max_wait_rate_limiter() -> None:
    """client-go TestWithMaxWaitRateLimiter (``NewWithMaxWaitRateLimiter``): every wait of the inner
    limiter is capped (ours: ``MaxWaitRateLimiter``)."""
    inner = StepRateLimiter(0.005, 1000.0, 100)
    assert isinstance(inner, RateLimiter)
    limiter = MaxWaitRateLimiter(inner, 500.0)
    assert [limiter.when(i) for i in range(100)] == [0.005] * 100
    assert [limiter.when(i) for i in range(100, 200)] == [500.0] * 100
