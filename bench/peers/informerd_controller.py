"""Peer child: informerd's ``Controller`` on all pods with an async no-op reconciler that only notes
when it started (the object comes from the cache, as with controller-runtime's ``Get``). Synced =
``controller.wait_synced`` (caches and handlers); ``initial`` = every pod reconciled once; then the
patched pods, latency write -> reconcile start. ``--workers`` = ``max_concurrent_reconciles``.
Protocol: ``child``."""

from __future__ import annotations

import os
import time
from typing import Any

import anyio

from bench.peers import child


def main() -> None:
    args = child.parser(__doc__ or "").parse_args()
    channel = child.Channel()

    from controllers.controller import Controller
    from controllers.reconciler import ReconcileContext
    from controllers.request import Request
    from informers.client import ApiClient
    from informers.config import load_config
    from informers.factory import InformerFactory
    from informers.resources import Resource

    tracker = child.Tracker(args.token, args.expect, args.updates)

    async def reconcile(request: Request, obj: dict[str, Any] | None, ctx: ReconcileContext) -> None:
        meta = obj["metadata"] if obj is not None else {}
        tracker.see(request.uid, meta.get("labels"), meta.get("annotations"))

    async def run() -> None:
        client = ApiClient(load_config(args.kubeconfig, qps=args.qps, burst=args.burst))
        rss0 = child.baseline()
        async with InformerFactory(client) as factory:
            controller = Controller(
                factory,
                Resource("", "v1", "pods", "Pod", namespaced=True),
                reconcile,
                max_concurrent_reconciles=args.workers,
                cache_sync_timeout=args.timeout,
            )
            started, cpu_start = time.perf_counter(), child.cpu_seconds()
            async with anyio.create_task_group() as group:
                group.start_soon(controller.run)
                if not await controller.wait_synced(args.timeout):
                    raise SystemExit(f"controller not synced after {args.timeout} s")
                objects = len(controller.primary_informer.store) if controller.primary_informer else 0
                channel.emit("synced", **child.synced_fields(started, cpu_start, objects, rss0))
                await anyio.to_thread.run_sync(tracker.initial.wait, args.timeout)
                channel.emit("initial", **tracker.initial_fields(started, cpu_start))
                cpu0 = child.cpu_seconds()
                await anyio.to_thread.run_sync(tracker.done.wait, args.timeout)
                channel.emit("events", **tracker.events_fields(cpu0))
                os._exit(0)  # no drain: nothing is in flight worth waiting for

    anyio.run(run)


if __name__ == "__main__":
    main()
