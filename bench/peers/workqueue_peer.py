"""Peer child: informerd's ``controllers.workqueue.WorkQueue``, add/get/done cycles/s, timed as
``bench/workqueue_bench.py`` does (one thread looping; W threads draining what the main thread adds;
W anyio tasks, ``get_nowait`` first). Prints one ``workqueue`` line; the Go twin is
``bench/controllerruntime workqueue`` (client-go's ``workqueue.Typed``)."""

from __future__ import annotations

import argparse
import json

from bench import workqueue_bench


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--workers", type=int, default=4)
    args = p.parse_args()
    n, w = args.items, args.workers
    result = {
        "phase": "workqueue",
        "one_thread": n / workqueue_bench.one_thread(n, w),
        "workers": n / workqueue_bench.worker_threads(n, w),
        "tasks": n / workqueue_bench.tasks_nowait_first(n, w),
        "worker_count": w,
        "items": n,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
