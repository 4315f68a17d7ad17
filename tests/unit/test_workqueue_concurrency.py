"""Randomized concurrency checks of the work queue's two promises, with threads and anyio tasks:

1. every key's latest added version is processed after its last add (no change is lost), and
2. no key is ever held by two workers at once.

Producers record ``latest[key] = version`` *before* adding the key; a worker reads ``latest[key]``
*after* taking it. If the queue keeps its promises, the last version read for each key equals the
last version written once everything is drained.
"""

from __future__ import annotations

import itertools
import random
import threading
import time

import anyio
import pytest

from controllers.delaying import DelayingQueue
from controllers.workqueue import QueueShutDown, WorkQueue
from informers._bridge import SUPPORTED_BACKENDS

KEYS = 40
ADDS_PER_PRODUCER = 1500


class Ledger:
    """Shared bookkeeping for producers and workers (one lock; threads and tasks alike)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.versions = itertools.count(1)
        self.latest: dict[str, int] = {}
        self.processed: dict[str, int] = {}
        self.in_flight: set[str] = set()
        self.violations: list[str] = []
        self.passes = 0

    def record_add(self, key: str) -> None:
        with self.lock:
            self.latest[key] = next(self.versions)

    def begin(self, key: str, worker: str) -> int:
        with self.lock:
            if key in self.in_flight:
                self.violations.append(f"{key} taken by {worker} while another worker held it")
            self.in_flight.add(key)
            self.passes += 1
            return self.latest[key]

    def end(self, key: str, seen: int) -> None:
        # Called before queue.done(key): once done, another worker may take the key legitimately.
        with self.lock:
            self.in_flight.discard(key)
            self.processed[key] = max(self.processed.get(key, 0), seen)

    def assert_consistent(self) -> None:
        assert self.violations == []
        assert self.in_flight == set()
        stale = {k: (v, self.processed.get(k)) for k, v in self.latest.items() if self.processed.get(k) != v}
        assert stale == {}, f"keys whose last version was never processed: {stale}"


def produce(queue: WorkQueue[str], ledger: Ledger, seed: int, delayed: bool) -> None:
    rng = random.Random(seed)
    for _ in range(ADDS_PER_PRODUCER):
        key = f"k{rng.randrange(KEYS)}"
        ledger.record_add(key)
        if delayed and isinstance(queue, DelayingQueue) and rng.random() < 0.3:
            queue.add_after(key, rng.random() * 0.002)
        else:
            queue.add(key)
        if rng.random() < 0.05:
            time.sleep(0)  # let other threads interleave


def work(queue: WorkQueue[str], ledger: Ledger, seed: int) -> None:
    rng = random.Random(seed)
    name = f"thread-{seed}"
    while True:
        try:
            key = queue.get(timeout=30)
        except QueueShutDown:
            return
        seen = ledger.begin(key, name)
        if rng.random() < 0.3:
            time.sleep(0)  # hold the key while others run
        ledger.end(key, seen)
        queue.done(key)


def wait_no_delayed(queue: WorkQueue[str]) -> None:
    deadline = time.monotonic() + 10
    while queue.statistics().delayed:
        assert time.monotonic() < deadline, "delayed items never became due"
        time.sleep(0.001)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("delayed", [False, True], ids=["add", "add_after"])
def test_threads_never_lose_a_change_or_share_a_key(seed: int, delayed: bool) -> None:
    queue: WorkQueue[str] = DelayingQueue("threads") if delayed else WorkQueue("threads")
    ledger = Ledger()
    workers = [threading.Thread(target=work, args=(queue, ledger, seed * 100 + i)) for i in range(4)]
    producers = [threading.Thread(target=produce, args=(queue, ledger, seed * 1000 + i, delayed)) for i in range(4)]
    for t in workers + producers:
        t.start()
    for t in producers:
        t.join()
    wait_no_delayed(queue)
    assert queue.shutdown_with_drain(timeout=30)
    for t in workers:
        t.join(30)
        assert not t.is_alive()
    ledger.assert_consistent()
    stats = queue.statistics()
    assert stats.gets_total == stats.done_total == ledger.passes
    assert stats.depth == stats.processing == 0


@pytest.mark.parametrize("backend", SUPPORTED_BACKENDS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_tasks_and_threads_never_lose_a_change_or_share_a_key(seed: int, backend: str) -> None:
    """Async workers and producers on one loop, plus producer and worker threads on the side
    (cross-thread wake-ups of tasks and of threads)."""
    queue: DelayingQueue[str] = DelayingQueue("mixed")
    ledger = Ledger()

    async def produce_async(pseed: int) -> None:
        rng = random.Random(pseed)
        for _ in range(ADDS_PER_PRODUCER):
            key = f"k{rng.randrange(KEYS)}"
            ledger.record_add(key)
            if rng.random() < 0.2:
                queue.add_after(key, rng.random() * 0.002)
            else:
                queue.add(key)
            if rng.random() < 0.1:
                await anyio.sleep(0)

    async def work_async(wseed: int) -> None:
        rng = random.Random(wseed)
        name = f"task-{wseed}"
        while True:
            try:
                key = await queue.get_async()
            except QueueShutDown:
                return
            seen = ledger.begin(key, name)
            if rng.random() < 0.3:
                await anyio.sleep(0)  # hold the key across a yield
            ledger.end(key, seen)
            queue.done(key)

    async def main() -> None:
        worker_threads = [threading.Thread(target=work, args=(queue, ledger, seed * 100 + i)) for i in range(2)]
        producer_threads = [
            threading.Thread(target=produce, args=(queue, ledger, seed * 1000 + i, True)) for i in range(2)
        ]
        with anyio.fail_after(60):
            async with anyio.create_task_group() as workers:
                for i in range(4):
                    workers.start_soon(work_async, seed * 10 + i)
                for t in worker_threads + producer_threads:
                    t.start()
                async with anyio.create_task_group() as producers:
                    for i in range(3):
                        producers.start_soon(produce_async, seed * 10_000 + i)
                for t in producer_threads:
                    await anyio.to_thread.run_sync(t.join)
                await anyio.to_thread.run_sync(wait_no_delayed, queue)
                assert await queue.shutdown_with_drain_async()
            for t in worker_threads:
                await anyio.to_thread.run_sync(t.join, 30)
                assert not t.is_alive()

    anyio.run(main, backend=backend)
    ledger.assert_consistent()
    stats = queue.statistics()
    assert stats.gets_total == stats.done_total == ledger.passes
