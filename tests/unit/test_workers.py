"""WorkerPool: outcome handling (success, errors, terminal, requeue, requeue_after, bad results),
timeouts that free the worker (async cancelled, sync abandoned while its key stays busy), one key
never on two workers, and shutdown (stop taking keys, drain, then cancel). The queue runs on a
FakeClock without its timer, so retry delays are read, never waited for."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from controllers._workers import WorkerPool
from controllers.errors import TerminalError
from controllers.ratelimit import ItemExponentialRateLimiter
from controllers.ratelimited import RateLimitingQueue
from controllers.reconciler import ReconcileContext
from controllers.request import Request
from controllers.result import Result
from informers.clock import FakeClock
from informers.errors import ConflictError

from .conftest import wait_until_async

A, B, C = (Request("Widget", uid, "ns", uid) for uid in ("a", "b", "c"))


class Metrics:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_reconcile(self, result: str, seconds: float) -> None:
        assert seconds >= 0
        self.seen.append(result)


def make_queue(clock: FakeClock) -> RateLimitingQueue[Request]:
    return RateLimitingQueue("test", rate_limiter=ItemExponentialRateLimiter(1.0, 100.0), clock=clock)


class Recorder:
    """A reconciler (sync or async) that records calls and replays scripted outcomes per key."""

    def __init__(self, script: dict[str, list[Any]] | None = None) -> None:
        self.calls: list[tuple[str, Any, int]] = []
        self.script = script or {}

    def outcome(self, request: Request, obj: Any, ctx: ReconcileContext) -> Any:
        self.calls.append((request.uid, obj, ctx.attempt))
        steps = self.script.get(request.uid)
        step = steps.pop(0) if steps else None
        if isinstance(step, BaseException):
            raise step
        return step

    def count(self, uid: str) -> int:
        return sum(1 for c in self.calls if c[0] == uid)


def make_reconciler(recorder: Recorder, is_async: bool) -> Any:
    if is_async:

        async def reconcile(request: Request, obj: Any, ctx: ReconcileContext) -> Any:
            return recorder.outcome(request, obj, ctx)

        return reconcile

    def reconcile_sync(request: Request, obj: Any, ctx: ReconcileContext) -> Any:
        return recorder.outcome(request, obj, ctx)

    return reconcile_sync


def run_pool(pool: WorkerPool, body: Callable[[], Any]) -> None:
    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(pool.run)
            await body()
            group.cancel_scope.cancel()

    anyio.run(main)


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_outcomes_map_to_queue_actions_like_controller_runtime(is_async: bool) -> None:
    clock = FakeClock()
    queue = make_queue(clock)
    recorder = Recorder(
        {
            "a": [RuntimeError("bug"), ConflictError("stale"), None],  # panic, error, then success
            "b": [Result.requeue_after(30.0)],
            "c": [Result.requeue(), Result.requeue()],
        }
    )
    metrics = Metrics()
    objects = {"a": {"metadata": {"uid": "a"}}}
    pool = WorkerPool(
        queue, make_reconciler(recorder, is_async), lambda r: objects.get(r.uid), name="widgets", metrics=metrics
    )

    async def body() -> None:
        queue.add(A)
        queue.add(B)
        queue.add(C)
        await wait_until_async(lambda: len(recorder.calls) == 3 and queue.statistics().processing == 0)
        # a failed (a bug): requeued with the limiter's first delay, failure remembered.
        assert queue.num_requeues(A) == 1 and queue.num_requeues(C) == 1
        assert queue.num_requeues(B) == 0  # requeue_after forgets
        assert queue.next_ready_in() == pytest.approx(1.0)  # a and c at 1 s; b at 30 s
        clock.advance(1.0)
        queue.process_due()
        await wait_until_async(
            lambda: recorder.count("a") == 2 and recorder.count("c") == 2 and queue.statistics().processing == 0
        )
        assert queue.num_requeues(A) == 2 and queue.num_requeues(C) == 2  # second delay: 2 s
        clock.advance(2.0)
        queue.process_due()
        await wait_until_async(lambda: recorder.count("a") == 3 and queue.statistics().processing == 0)
        assert queue.num_requeues(A) == 0  # success forgets
        assert recorder.count("b") == 1
        clock.advance(27.0)
        queue.process_due()
        await wait_until_async(lambda: recorder.count("b") == 2)

    run_pool(pool, body)
    # The object is resolved per call; None when gone.
    assert [c[1] for c in recorder.calls if c[0] == "a"] == [objects["a"]] * 3
    assert all(c[1] is None for c in recorder.calls if c[0] != "a")
    # ctx.attempt is the failure count when the call began.
    assert [c[2] for c in recorder.calls if c[0] == "a"] == [0, 1, 2]
    stats = pool.statistics()
    # a: error, error, success; b: requeue_after, success; c: requeue, requeue, success.
    assert stats.reconcile_total == {"success": 3, "error": 2, "requeue": 2, "requeue_after": 1}
    assert (stats.panics_total, stats.terminal_errors_total, stats.timeouts_total) == (1, 0, 0)
    assert sorted(metrics.seen) == sorted(["error"] * 2 + ["success"] * 3 + ["requeue"] * 2 + ["requeue_after"])


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_terminal_error_is_forgotten_and_never_retried(is_async: bool) -> None:
    clock = FakeClock()
    queue = make_queue(clock)
    recorder = Recorder({"a": [RuntimeError("flaky"), TerminalError("invalid spec")]})
    pool = WorkerPool(queue, make_reconciler(recorder, is_async), lambda r: None)

    async def body() -> None:
        queue.add(A)
        await wait_until_async(lambda: recorder.count("a") == 1 and queue.statistics().processing == 0)
        clock.advance(1.0)
        queue.process_due()
        await wait_until_async(lambda: recorder.count("a") == 2 and queue.statistics().processing == 0)
        stats = queue.statistics()
        assert stats.delayed == 0 and stats.depth == 0  # nothing scheduled
        assert queue.num_requeues(A) == 0  # forgotten
        clock.advance(1000.0)
        assert queue.process_due() == 0

    run_pool(pool, body)
    stats = pool.statistics()
    assert (stats.terminal_errors_total, stats.error_total, stats.panics_total) == (1, 2, 1)


def test_invalid_result_counts_as_a_panic_and_is_retried() -> None:
    clock = FakeClock()
    queue = make_queue(clock)
    recorder = Recorder({"a": ["not a result"]})
    pool = WorkerPool(queue, make_reconciler(recorder, False), lambda r: None)

    async def body() -> None:
        queue.add(A)
        await wait_until_async(lambda: pool.statistics().error_total == 1)
        assert queue.num_requeues(A) == 1

    run_pool(pool, body)
    assert pool.statistics().panics_total == 1


def test_async_timeout_cancels_the_call_and_frees_the_only_worker() -> None:
    clock = FakeClock()
    queue = make_queue(clock)
    done: list[str] = []
    contexts: list[ReconcileContext] = []

    async def reconcile(request: Request, obj: Any, ctx: ReconcileContext) -> None:
        contexts.append(ctx)
        if request.uid == "a":
            await anyio.sleep_forever()
        done.append(request.uid)

    pool = WorkerPool(queue, reconcile, lambda r: None, workers=1, reconcile_timeout=0.05)

    async def body() -> None:
        queue.add(A)
        queue.add(B)
        await wait_until_async(lambda: done == ["b"])
        assert queue.num_requeues(A) == 1  # the timeout is a retryable error
        assert [c.cancelled for c in contexts] == [True, False]  # a's context was flagged

    run_pool(pool, body)
    stats = pool.statistics()
    assert (stats.timeouts_total, stats.error_total, stats.panics_total, stats.overrun_threads) == (1, 1, 0, 0)


def test_sync_timeout_frees_the_worker_but_keeps_the_key_busy_until_the_thread_returns() -> None:
    clock = FakeClock()
    queue = make_queue(clock)
    release = threading.Event()
    lock = threading.Lock()
    calls: list[str] = []
    running: dict[str, int] = {}
    overlap: list[str] = []
    seen_cancelled: list[bool] = []

    def reconcile(request: Request, obj: Any, ctx: ReconcileContext) -> Result:
        with lock:
            calls.append(request.uid)
            running[request.uid] = running.get(request.uid, 0) + 1
            if running[request.uid] > 1:
                overlap.append(request.uid)
        try:
            if request.uid == "a" and calls.count("a") == 1:
                release.wait(10)  # ignores ctx: a true overrun
                seen_cancelled.append(ctx.cancelled)
            return Result.done()
        finally:
            with lock:
                running[request.uid] -= 1

    pool = WorkerPool(queue, reconcile, lambda r: None, workers=1, reconcile_timeout=0.05)

    async def body() -> None:
        queue.add(A)
        queue.add(B)
        await wait_until_async(lambda: "b" in calls)  # the single worker moved on
        stats = pool.statistics()
        assert stats.overrun_threads == 1 and stats.timeouts_total == 1
        # a is still held by its thread: a new event for it parks instead of starting a second call.
        queue.add(A)
        clock.advance(1.0)
        queue.process_due()  # the timeout's retry is due too
        await anyio.sleep(0.05)
        assert calls.count("a") == 1 and queue.statistics().processing == 1
        release.set()
        await wait_until_async(lambda: calls.count("a") == 2)
        await wait_until_async(lambda: pool.statistics().overrun_threads == 0)

    run_pool(pool, body)
    assert overlap == [] and seen_cancelled == [True]


def test_sync_reconciler_waiting_on_ctx_returns_as_soon_as_it_times_out() -> None:
    queue = make_queue(FakeClock())
    woke: list[bool] = []

    def reconcile(request: Request, obj: Any, ctx: ReconcileContext) -> None:
        woke.append(ctx.wait_cancelled(10))

    pool = WorkerPool(queue, reconcile, lambda r: None, reconcile_timeout=0.05)

    async def body() -> None:
        queue.add(A)
        await wait_until_async(
            lambda: woke == [True] and pool.statistics().overrun_threads == 0 and queue.statistics().processing == 0
        )

    run_pool(pool, body)
    assert pool.statistics().timeouts_total == 1


def test_never_two_workers_on_one_key_while_keys_run_in_parallel() -> None:
    queue = make_queue(FakeClock())
    lock = threading.Lock()
    running: dict[str, int] = {}
    peak_per_key: dict[str, int] = {}
    peak_total = [0]
    calls = [0]

    def reconcile(request: Request, obj: Any, ctx: ReconcileContext) -> None:
        with lock:
            running[request.uid] = running.get(request.uid, 0) + 1
            peak_per_key[request.uid] = max(peak_per_key.get(request.uid, 0), running[request.uid])
            peak_total[0] = max(peak_total[0], sum(running.values()))
            calls[0] += 1
        time.sleep(0.005)
        with lock:
            running[request.uid] -= 1

    keys = [Request("Widget", f"k{i}") for i in range(4)]
    pool = WorkerPool(queue, reconcile, lambda r: None, workers=4)

    async def body() -> None:
        for _ in range(30):  # re-add every key while it is being processed
            for key in keys:
                queue.add(key)
            await anyio.sleep(0.002)
        await wait_until_async(lambda: queue.statistics().depth == 0 and queue.statistics().processing == 0)

    run_pool(pool, body)
    assert set(peak_per_key.values()) == {1}
    assert peak_total[0] > 1  # the pool did run different keys at once
    assert calls[0] < 30 * 4  # adds during processing collapsed


def test_shutdown_stops_taking_keys_and_drains_in_flight_calls() -> None:
    queue = make_queue(FakeClock())
    started = threading.Event()
    calls: list[str] = []

    def reconcile(request: Request, obj: Any, ctx: ReconcileContext) -> None:
        calls.append(request.uid)
        started.set()
        time.sleep(0.1)  # in flight when shutdown begins

    pool = WorkerPool(queue, reconcile, lambda r: None, workers=1, drain_timeout=5.0)

    async def main() -> None:
        queue.add(A)
        queue.add(B)
        async with anyio.create_task_group() as group:
            group.start_soon(pool.run)
            await anyio.to_thread.run_sync(started.wait, 5)
            group.cancel_scope.cancel()

    anyio.run(main)
    stats = pool.statistics()
    assert calls == ["a"]  # b was queued, never taken
    assert stats.success_total == 1 and stats.cancelled_total == 0  # a finished within the drain
    assert queue.shutting_down() and not stats.running and stats.active_workers == 0


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_shutdown_cancels_calls_that_outlive_the_drain_deadline(is_async: bool) -> None:
    queue = make_queue(FakeClock())
    entered = threading.Event()
    saw_cancel: list[bool] = []

    if is_async:

        async def reconcile(request: Request, obj: Any, ctx: ReconcileContext) -> None:
            entered.set()
            try:
                await anyio.sleep(30)
            finally:
                saw_cancel.append(True)
    else:

        def reconcile(request: Request, obj: Any, ctx: ReconcileContext) -> None:  # type: ignore[misc]
            entered.set()
            saw_cancel.append(ctx.wait_cancelled(30))

    pool = WorkerPool(queue, reconcile, lambda r: None, drain_timeout=0.05)

    async def main() -> None:
        queue.add(A)
        async with anyio.create_task_group() as group:
            group.start_soon(pool.run)
            await anyio.to_thread.run_sync(entered.wait, 5)
            with anyio.fail_after(5):
                group.cancel_scope.cancel()

    anyio.run(main)
    deadline = time.monotonic() + 5
    while not saw_cancel and time.monotonic() < deadline:
        time.sleep(0.01)
    stats = pool.statistics()
    assert saw_cancel == [True] and stats.cancelled_total == 1
    assert stats.reconcile_total == {"success": 0, "error": 0, "requeue": 0, "requeue_after": 0}


def test_pool_runs_once_and_statistics_name_controller_runtime_metrics() -> None:
    queue = make_queue(FakeClock())
    pool = WorkerPool(queue, lambda r, o, c: None, lambda r: None, name="widgets", workers=3)
    names = {name for name, labels, _ in pool.statistics().samples()}
    assert names == {
        "controller_runtime_reconcile_total",
        "controller_runtime_reconcile_errors_total",
        "controller_runtime_terminal_reconcile_errors_total",
        "controller_runtime_reconcile_panics_total",
        "controller_runtime_active_workers",
        "controller_runtime_max_concurrent_reconciles",
    }
    results = sorted(l["result"] for n, l, _ in pool.statistics().samples() if n.endswith("reconcile_total"))
    assert results == ["error", "requeue", "requeue_after", "success"]
    assert (
        dict(((n, v) for n, _, v in pool.statistics().samples()))["controller_runtime_max_concurrent_reconciles"] == 3
    )

    async def twice() -> None:
        queue.shutdown()
        await pool.run()  # returns: the queue is shut down and empty
        with pytest.raises(Exception, match="already run"):
            await pool.run()

    anyio.run(twice)
    with pytest.raises(ValueError):
        WorkerPool(queue, lambda r, o, c: None, lambda r: None, workers=0)


def test_a_sync_reconciler_that_never_returns_costs_a_bounded_number_of_threads() -> None:
    clock = FakeClock()
    queue = make_queue(clock)
    release = threading.Event()
    lock = threading.Lock()
    entered: list[str] = []

    def hangs(request: Request, obj: Any, ctx: ReconcileContext) -> None:
        with lock:
            entered.append(request.uid)
        release.wait(30)  # ignores ctx: every call overruns

    keys = [Request("Widget", f"k{i}", "ns", f"k{i}") for i in range(12)]
    pool = WorkerPool(queue, hangs, lambda r: None, workers=2, reconcile_timeout=0.05, max_abandoned_threads=3)
    peak = 0

    async def body() -> None:
        nonlocal peak
        for key in keys:
            queue.add(key)
        # Every key is tried (a call waiting for a thread times out like any other), yet no more
        # than max_abandoned_threads + workers threads ever enter the reconciler (none returns).
        deadline = anyio.current_time() + 10
        while pool.statistics().timeouts_total < len(keys) and anyio.current_time() < deadline:
            peak = max(peak, pool.statistics().overrun_threads)
            await anyio.sleep(0.01)
        stats = pool.statistics()
        assert stats.timeouts_total >= len(keys)
        assert 3 <= len(entered) <= 3 + 2 and stats.overrun_threads >= 3
        release.set()  # the stuck calls return: their keys are released and new threads may start
        await wait_until_async(lambda: pool.statistics().overrun_threads == 0)
        clock.advance(100.0)
        queue.process_due()
        await wait_until_async(lambda: len(set(entered)) > 3)

    run_pool(pool, body)
    assert peak <= 3 + 2 - 1  # two workers may both pass the check at 2 and both overrun
