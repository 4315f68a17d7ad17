"""Throughput of the work queue: add/get/done cycles per second in a few worker arrangements.

Usage: ``.venv/bin/python bench/workqueue_bench.py [--items N] [--runs R] [--workers W]
[--backend asyncio|trio]``.
Prints the median (and min/max) of R runs per scenario. Every item is a distinct int, so no add is
deduplicated; the figure is the cost of the queue itself, with an empty "reconcile".

Scenarios:
- ``1 thread``: one thread loops add -> get -> done.
- ``W threads``: the main thread adds N items while W worker threads get/done them.
- ``W tasks (get_async)``: a producer task adds N items while W anyio tasks get/done them; every
  ``get_async`` yields to the loop once.
- ``W tasks (nowait first)``: as above, but workers try ``get_nowait`` before ``get_async``.
- ``thread -> W tasks``: a plain thread adds N items, W anyio tasks consume (cross-thread wakes).
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable

import anyio

from controllers.workqueue import QueueEmpty, QueueShutDown, WorkQueue


def one_thread(n: int, workers: int) -> float:
    q: WorkQueue[int] = WorkQueue("bench")
    start = time.perf_counter()
    for i in range(n):
        q.add(i)
        item = q.get()
        q.done(item)
    return time.perf_counter() - start


def worker_threads(n: int, workers: int) -> float:
    q: WorkQueue[int] = WorkQueue("bench")

    def work() -> None:
        while True:
            try:
                item = q.get()
            except QueueShutDown:
                return
            q.done(item)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for i in range(n):
        q.add(i)
    drained = q.shutdown_with_drain(timeout=600)
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    assert drained and q.statistics().done_total == n
    return elapsed


BACKEND = "asyncio"  # the anyio backend of the task scenarios (--backend)


def _async_scenario(n: int, workers: int, *, nowait_first: bool, thread_producer: bool) -> float:
    q: WorkQueue[int] = WorkQueue("bench")

    async def work() -> None:
        while True:
            try:
                if nowait_first:
                    try:
                        item = q.get_nowait()
                    except QueueEmpty:
                        item = await q.get_async()
                else:
                    item = await q.get_async()
            except QueueShutDown:
                return
            q.done(item)

    def produce_sync() -> None:
        for i in range(n):
            q.add(i)

    async def produce() -> None:
        # Batches of 1000 with a yield between them, as an informer handler would hand over.
        for base in range(0, n, 1000):
            for i in range(base, min(base + 1000, n)):
                q.add(i)
            await anyio.sleep(0)

    async def main() -> float:
        start = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(workers):
                tg.start_soon(work)
            if thread_producer:
                producer = threading.Thread(target=produce_sync)
                producer.start()
                await anyio.to_thread.run_sync(producer.join)
            else:
                await produce()
            assert await q.shutdown_with_drain_async()
        elapsed = time.perf_counter() - start
        assert q.statistics().done_total == n
        return elapsed

    return anyio.run(main, backend=BACKEND)


def tasks(n: int, workers: int) -> float:
    return _async_scenario(n, workers, nowait_first=False, thread_producer=False)


def tasks_nowait_first(n: int, workers: int) -> float:
    return _async_scenario(n, workers, nowait_first=True, thread_producer=False)


def thread_to_tasks(n: int, workers: int) -> float:
    return _async_scenario(n, workers, nowait_first=False, thread_producer=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000, help="items per run (default 100000)")
    parser.add_argument("--runs", type=int, default=5, help="runs per scenario (default 5)")
    parser.add_argument("--workers", type=int, default=4, help="workers (default 4)")
    parser.add_argument(
        "--backend",
        choices=["asyncio", "trio"],
        default="asyncio",
        help="anyio backend of the task scenarios (default asyncio)",
    )
    args = parser.parse_args()
    global BACKEND
    BACKEND = args.backend
    w = args.workers
    scenarios: list[tuple[str, Callable[[int, int], float]]] = [
        ("1 thread", one_thread),
        (f"{w} threads", worker_threads),
        (f"{w} tasks (get_async)", tasks),
        (f"{w} tasks (nowait first)", tasks_nowait_first),
        (f"thread -> {w} tasks", thread_to_tasks),
    ]
    print(f"items={args.items} runs={args.runs} backend={args.backend} (cycles/s = add+get+done per second)")
    print(f"{'scenario':<26} {'median':>10} {'min':>10} {'max':>10}")
    for label, fn in scenarios:
        rates = [args.items / fn(args.items, w) for _ in range(args.runs)]
        print(f"{label:<26} {statistics.median(rates):>10,.0f} {min(rates):>10,.0f} {max(rates):>10,.0f}")


if __name__ == "__main__":
    main()
