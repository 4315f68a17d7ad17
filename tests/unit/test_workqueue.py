"""WorkQueue semantics (client-go workqueue.Type): dedup, parking while processing, shutdown,
drain, statistics and metrics hooks, for threads and anyio tasks (asyncio and trio)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import anyio
import pytest

from controllers.workqueue import (
    ItemNotProcessingError,
    NoopWorkQueueMetrics,
    QueueEmpty,
    QueueShutDown,
    WorkQueue,
    WorkQueueError,
)
from informers._bridge import SUPPORTED_BACKENDS, Loop
from informers.clock import FakeClock
from informers.errors import InformerdError


@pytest.fixture(params=SUPPORTED_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every async test here runs on each backend informerd supports."""
    backend: str = request.param
    return backend


from .conftest import wait_until  # noqa: E402 - the shared helper (imported here to keep merges easy)


def start(target: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    result: list[object] = []

    def run() -> None:
        try:
            result.append(target())
        except BaseException as exc:  # handed to the test to assert on
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []

    def on_add(self) -> None:
        self.calls.append(("add", 0.0))

    def on_get(self, queued_seconds: float) -> None:
        self.calls.append(("get", queued_seconds))

    def on_done(self, work_seconds: float) -> None:
        self.calls.append(("done", work_seconds))

    def on_retry(self) -> None:
        self.calls.append(("retry", 0.0))


def test_adding_a_waiting_item_is_a_no_op_and_order_is_fifo() -> None:
    q: WorkQueue[str] = WorkQueue()
    for item in ["a", "b", "a", "c", "b"]:
        q.add(item)
    assert len(q) == 3
    assert [q.get_nowait() for _ in range(3)] == ["a", "b", "c"]
    with pytest.raises(QueueEmpty):
        q.get_nowait()
    assert q.statistics().adds_total == 3


def test_item_added_while_processing_is_parked_and_requeued_on_done() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert q.get_nowait() == "a"
    q.add("a")
    q.add("a")  # still one pending copy
    stats = q.statistics()
    assert (len(q), stats.depth, stats.processing) == (0, 1, 1)
    with pytest.raises(QueueEmpty):
        q.get_nowait()  # never handed to a second worker while held
    q.done("a")
    assert len(q) == 1
    assert q.get_nowait() == "a"
    q.done("a")
    assert len(q) == 0


def test_requeued_item_goes_to_the_tail() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert q.get_nowait() == "a"
    q.add("a")
    q.add("b")
    q.done("a")
    assert [q.get_nowait(), q.get_nowait()] == ["b", "a"]


def test_done_on_an_item_nobody_holds_raises() -> None:
    q: WorkQueue[str] = WorkQueue("pods")
    q.add("a")
    with pytest.raises(ItemNotProcessingError, match="pods"):
        q.done("a")  # queued but not taken
    q.done(q.get_nowait())
    with pytest.raises(ItemNotProcessingError):
        q.done("a")  # second done
    assert len(q) == 0  # the bad calls did not duplicate the item


def test_shutdown_drains_queued_items_then_reports_shutdown() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.add("b")
    q.shutdown()
    q.add("c")  # ignored after shutdown
    assert q.shutting_down()
    assert [q.get(), q.get_nowait()] == ["a", "b"]
    with pytest.raises(QueueShutDown):
        q.get()
    with pytest.raises(QueueShutDown):
        q.get_nowait()
    assert q.statistics().adds_total == 2


def test_get_blocks_until_an_item_arrives_from_another_thread() -> None:
    q: WorkQueue[str] = WorkQueue()
    thread, result = start(q.get)
    wait_until(lambda: q.statistics().waiting_getters == 1)
    q.add("a")
    thread.join(5)
    assert result == ["a"]
    assert q.statistics().waiting_getters == 0


def test_get_timeout_raises_timeout_error() -> None:
    q: WorkQueue[str] = WorkQueue()
    with pytest.raises(TimeoutError):
        q.get(timeout=0.01)
    assert q.statistics().waiting_getters == 0


def test_shutdown_wakes_blocked_getters() -> None:
    q: WorkQueue[str] = WorkQueue()
    workers = [start(q.get) for _ in range(3)]
    wait_until(lambda: q.statistics().waiting_getters == 3)
    q.shutdown()
    for thread, result in workers:
        thread.join(5)
        assert len(result) == 1 and isinstance(result[0], QueueShutDown)


def test_each_add_wakes_one_getter_and_no_item_is_lost() -> None:
    q: WorkQueue[int] = WorkQueue()
    workers = [start(q.get) for _ in range(3)]
    wait_until(lambda: q.statistics().waiting_getters == 3)
    for i in range(3):
        q.add(i)
    got = []
    for thread, result in workers:
        thread.join(5)
        got.extend(result)
    assert sorted(got) == [0, 1, 2]  # type: ignore[type-var]


def test_shutdown_with_drain_waits_for_in_flight_items() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    item = q.get_nowait()
    thread, result = start(q.shutdown_with_drain)
    wait_until(lambda: q.statistics().draining)
    assert thread.is_alive() and result == []  # cannot be drained while "a" is held
    q.add("b")  # ignored: shutting down
    q.done(item)
    thread.join(5)
    assert result == [True]


def test_shutdown_with_drain_also_waits_for_queued_items() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert q.shutdown_with_drain(timeout=0.01) is False  # "a" was never taken
    q.done(q.get_nowait())
    assert q.shutdown_with_drain(timeout=0.01) is True


def test_item_parked_during_drain_is_still_processed() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.get_nowait()
    q.add("a")  # parked before shutdown
    thread, result = start(q.shutdown_with_drain)
    wait_until(lambda: q.statistics().draining)
    q.done("a")
    assert q.get_nowait() == "a"  # handed out again despite the shutdown
    q.done("a")
    thread.join(5)
    assert result == [True]
    with pytest.raises(QueueShutDown):
        q.get_nowait()


def test_shutdown_forces_a_pending_drain_to_return_false() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.get_nowait()
    thread, result = start(q.shutdown_with_drain)
    wait_until(lambda: q.statistics().draining)
    q.shutdown()
    thread.join(5)
    assert result == [False]
    assert not q.statistics().draining


def test_statistics_and_metrics_use_the_injected_clock() -> None:
    clock = FakeClock()
    recorder = Recorder()
    q: WorkQueue[str] = WorkQueue("pods", clock=clock, metrics=recorder)
    q.add("a")
    q.add("a")  # dedup: no hook
    clock.advance(2.0)
    q.add("b")
    assert q.get_nowait() == "a"
    clock.advance(3.0)
    assert q.get_nowait() == "b"
    clock.advance(1.0)
    stats = q.statistics()
    assert stats.name == "pods"
    assert (stats.depth, stats.ready, stats.processing) == (0, 0, 2)
    assert stats.unfinished_work_seconds == pytest.approx(4.0 + 1.0)
    assert stats.longest_running_processor_seconds == pytest.approx(4.0)
    q.done("a")
    stats = q.statistics()
    assert (stats.adds_total, stats.gets_total, stats.done_total, stats.retries_total) == (2, 2, 1, 0)
    assert stats.longest_running_processor_seconds == pytest.approx(1.0)
    assert recorder.calls == [
        ("add", 0.0),
        ("add", 0.0),
        ("get", pytest.approx(2.0)),
        ("get", pytest.approx(3.0)),
        ("done", pytest.approx(4.0)),
    ]


def test_queue_latency_of_a_parked_item_counts_from_its_add() -> None:
    clock = FakeClock()
    recorder = Recorder()
    q: WorkQueue[str] = WorkQueue(clock=clock, metrics=recorder)
    q.add("a")
    q.get_nowait()
    q.add("a")
    assert q.statistics().depth == 1  # parked items count in workqueue_depth, as in client-go
    clock.advance(5.0)
    q.done("a")
    clock.advance(1.0)
    q.get_nowait()
    kind, seconds = recorder.calls[-1]
    assert kind == "get" and seconds == pytest.approx(6.0)


def test_noop_metrics_are_accepted() -> None:
    q: WorkQueue[str] = WorkQueue(metrics=NoopWorkQueueMetrics())
    q.add("a")
    q.done(q.get_nowait())
    assert q.statistics().done_total == 1


# -- anyio tasks -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_get_async_waits_for_an_add_on_the_same_loop() -> None:
    q: WorkQueue[str] = WorkQueue()
    got: list[str] = []

    async def worker() -> None:
        got.append(await q.get_async())

    async with anyio.create_task_group() as tg:
        tg.start_soon(worker)
        while q.statistics().waiting_getters == 0:
            await anyio.sleep(0)
        q.add("a")
    assert got == ["a"]


@pytest.mark.anyio
async def test_get_async_is_woken_by_an_add_from_another_thread() -> None:
    q: WorkQueue[str] = WorkQueue()
    got: list[str] = []

    async def worker() -> None:
        got.append(await q.get_async())

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker)
            while q.statistics().waiting_getters == 0:
                await anyio.sleep(0)
            await anyio.to_thread.run_sync(q.add, "a")
    assert got == ["a"]


def test_cancelled_getter_passes_its_wake_up_to_the_next() -> None:
    # Plain asyncio: Task.cancel() after the wake-up lands on a task whose future is already
    # resolved, the exact race the hand-over exists for. (anyio defers delivering cancellation
    # to such a task, which then simply takes the item.)
    async def main() -> None:
        q: WorkQueue[str] = WorkQueue()
        first = asyncio.create_task(q.get_async())
        while q.statistics().waiting_getters < 1:
            await asyncio.sleep(0)
        second = asyncio.create_task(q.get_async())
        while q.statistics().waiting_getters < 2:
            await asyncio.sleep(0)
        q.add("a")  # wakes "first" (FIFO) ...
        first.cancel()  # ... which is cancelled before it runs again
        assert await asyncio.wait_for(second, 5) == "a"
        with pytest.raises(asyncio.CancelledError):
            await first
        assert q.statistics().processing == 1

    asyncio.run(main())


@pytest.mark.anyio
async def test_task_woken_from_a_thread_then_cancelled_passes_its_wake_up_on() -> None:
    """The same race through anyio on either backend: the producer thread pops the first getter
    and hands its wake-up to the loop, and the getter is cancelled before that wake-up runs."""
    q: WorkQueue[str] = WorkQueue()
    first_scope = anyio.CancelScope()
    first_got: list[str] = []
    second_got: list[str] = []

    async def first() -> None:
        with first_scope:
            first_got.append(await q.get_async())

    async def second() -> None:
        second_got.append(await q.get_async())

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(first)
            while q.statistics().waiting_getters < 1:
                await anyio.sleep(0)
            tg.start_soon(second)
            while q.statistics().waiting_getters < 2:
                await anyio.sleep(0)
            producer = threading.Thread(target=q.add, args=("a",))
            producer.start()
            producer.join()  # blocks the loop on purpose: the wake-up is queued, not yet run
            first_scope.cancel()
    assert (first_got, second_got) == ([], ["a"])


@pytest.mark.anyio
async def test_add_from_a_thread_crosses_into_the_loop_only_when_a_task_is_parked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hand_offs: list[object] = []
    call_soon = Loop.call_soon

    def counting(self: Loop, fn: Callable[..., object], *args: object) -> bool:
        hand_offs.append(fn)
        return call_soon(self, fn, *args)

    monkeypatch.setattr(Loop, "call_soon", counting)
    q: WorkQueue[int] = WorkQueue()
    await anyio.to_thread.run_sync(lambda: [q.add(i) for i in range(100)])
    assert hand_offs == []  # nobody parked: no loop wake-up at all
    while len(q):
        q.done(q.get_nowait())
    got: list[int] = []

    async def worker() -> None:
        got.append(await q.get_async())

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker)
            while q.statistics().waiting_getters == 0:
                await anyio.sleep(0)
            await anyio.to_thread.run_sync(q.add, 100)
    assert got == [100] and len(hand_offs) == 1  # one non-blocking hand-off for the one parked task


@pytest.mark.anyio
async def test_cancelled_waiting_task_leaves_no_waiter_behind() -> None:
    q: WorkQueue[str] = WorkQueue()
    with anyio.move_on_after(0.01):
        await q.get_async()
    assert q.statistics().waiting_getters == 0
    q.add("a")
    assert q.get_nowait() == "a"


@pytest.mark.anyio
async def test_get_async_drains_then_raises_after_shutdown() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.shutdown()
    assert await q.get_async() == "a"
    with pytest.raises(QueueShutDown):
        await q.get_async()


@pytest.mark.anyio
async def test_shutdown_wakes_waiting_tasks() -> None:
    q: WorkQueue[str] = WorkQueue()
    errors: list[BaseException] = []

    async def worker() -> None:
        try:
            await q.get_async()
        except QueueShutDown as exc:
            errors.append(exc)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for _ in range(2):
                tg.start_soon(worker)
            while q.statistics().waiting_getters < 2:
                await anyio.sleep(0)
            q.shutdown()
    assert len(errors) == 2


@pytest.mark.anyio
async def test_shutdown_with_drain_async_waits_for_done() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    item = await q.get_async()
    results: list[bool] = []

    async def drain() -> None:
        results.append(await q.shutdown_with_drain_async())

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(drain)
            while not q.statistics().draining:
                await anyio.sleep(0)
            for _ in range(10):
                await anyio.sleep(0)
            assert results == []
            q.done(item)
    assert results == [True]


@pytest.mark.anyio
async def test_shutdown_with_drain_async_returns_false_when_forced() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    await q.get_async()
    results: list[bool] = []

    async def drain() -> None:
        results.append(await q.shutdown_with_drain_async())

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(drain)
            while not q.statistics().draining:
                await anyio.sleep(0)
            q.shutdown()
    assert results == [False]


def test_queue_errors_derive_from_informerd_error_and_stay_catchable_as_before() -> None:
    for error in (WorkQueueError, QueueShutDown, QueueEmpty, ItemNotProcessingError):
        assert issubclass(error, InformerdError) and issubclass(error, Exception)
    for error in (QueueShutDown, QueueEmpty, ItemNotProcessingError):
        assert issubclass(error, WorkQueueError)
    q: WorkQueue[str] = WorkQueue()
    with pytest.raises(InformerdError):
        q.get_nowait()  # QueueEmpty
    q.shutdown()
    with pytest.raises(InformerdError):
        q.get_nowait()  # QueueShutDown
    with pytest.raises(InformerdError):
        q.done("never taken")
