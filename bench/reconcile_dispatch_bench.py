"""Dispatch overhead of the worker pool: enqueue -> reconcile called -> done, per key, no-op reconciler.

Usage: ``.venv/bin/python bench/reconcile_dispatch_bench.py [--keys N] [--runs R] [--backend asyncio|trio]``.
Each run adds N distinct ``Request`` keys to a fresh ``RateLimitingQueue``, shuts the queue down
(queued keys are still handed out) and times ``WorkerPool.run()`` until every key has been
reconciled and released: queue get, context creation, the call (a worker thread through
``anyio.to_thread.run_sync`` for sync reconcilers, a plain await for async ones), ``forget``,
``done`` and the statistics bookkeeping. The object lookup returns a constant, so the cost of
decoding a cached object (``Store.get_by_uid``, ~17 us for a 4 KB pod) is not included. Prints the
median (and min/max) microseconds per key over R runs per scenario, and the median keys/s.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import anyio

from controllers._workers import WorkerPool
from controllers.context import BlockingContext, Context, Services, front_door
from controllers.ratelimited import RateLimitingQueue
from controllers.reconciler import ReconcileContext
from controllers.request import Request

_OBJ: dict[str, Any] = {"metadata": {"name": "bench", "uid": "x"}}


def sync_noop(request: Request, obj: Any, ctx: ReconcileContext) -> None:
    return None


async def async_noop(request: Request, obj: Any, ctx: ReconcileContext) -> None:
    return None


# The front door (``@manager.reconcile``): the same no-op behind a Context per call. Nothing is
# written (the status is unchanged), so this adds exactly the Context's cost to the pool's.
_SERVICES = Services(None, None, None)  # type: ignore[arg-type]  # a no-op reconcile uses none


async def _ctx_async_noop(ctx: Context) -> None:
    return None


def _ctx_sync_noop(ctx: BlockingContext) -> None:
    return None


front_async = front_door(_ctx_async_noop, _SERVICES, is_async=True)
front_sync = front_door(_ctx_sync_noop, _SERVICES, is_async=False)


def one_run(
    reconciler: Callable[..., Any], keys: list[Request], workers: int, timeout: float | None, backend: str = "asyncio"
) -> float:
    queue: RateLimitingQueue[Request] = RateLimitingQueue("bench")
    pool = WorkerPool(queue, reconciler, lambda request: _OBJ, name="bench", workers=workers, reconcile_timeout=timeout)
    for key in keys:
        queue.add(key)
    queue.shutdown()  # queued keys are still handed out; run() returns once they are all done

    async def main() -> float:
        start = time.perf_counter()
        await pool.run()
        return time.perf_counter() - start

    elapsed = anyio.run(main, backend=backend)
    stats = pool.statistics()
    assert stats.success_total == len(keys) and queue.statistics().done_total == len(keys), stats
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--keys", type=int, default=20_000, help="keys per run (default 20000)")
    parser.add_argument("--runs", type=int, default=5, help="runs per scenario (default 5)")
    parser.add_argument(
        "--backend", choices=["asyncio", "trio"], default="asyncio", help="anyio backend (default asyncio)"
    )
    args = parser.parse_args()
    keys = [Request("Widget", f"uid-{i:07d}", "bench", f"w-{i}") for i in range(args.keys)]
    scenarios: list[tuple[str, Callable[..., Any], int, float | None]] = [
        ("sync, 1 worker", sync_noop, 1, None),
        ("sync, 4 workers", sync_noop, 4, None),
        ("sync, 1 worker, timeout", sync_noop, 1, 30.0),
        ("async, 1 worker", async_noop, 1, None),
        ("async, 4 workers", async_noop, 4, None),
        ("async, 1 worker, timeout", async_noop, 1, 30.0),
        ("front door sync, 4 workers", front_sync, 4, None),
        ("front door async, 1 worker", front_async, 1, None),
        ("front door async, 4 workers", front_async, 4, None),
    ]
    print(
        f"{args.keys} keys per run, {args.runs} runs, backend {args.backend}; "
        "microseconds per key (enqueue -> reconcile -> done)"
    )
    print(f"{'scenario':<28} {'median':>8} {'min':>8} {'max':>8} {'keys/s':>10}")
    for label, reconciler, workers, timeout in scenarios:
        per_key = [
            one_run(reconciler, keys, workers, timeout, args.backend) / args.keys * 1e6 for _ in range(args.runs)
        ]
        median = statistics.median(per_key)
        print(f"{label:<28} {median:>8.1f} {min(per_key):>8.1f} {max(per_key):>8.1f} {1e6 / median:>10,.0f}")


if __name__ == "__main__":
    main()
