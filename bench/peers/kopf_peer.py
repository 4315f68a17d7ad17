"""Peer child: kopf (the Python operator framework), run embedded (``kopf.operator`` on its own
event loop thread), standalone, cluster-wide, on pods with its defaults except where it would write
to the objects: an ``@kopf.on.event`` handler that counts (the informer path) and an
``@kopf.on.update`` handler that does nothing (the reconcile path). kopf keeps no cache, so
"synced" = the event handler has seen every one of ``--expect`` pods. Its diff-base and progress
storages are kept in memory and event posting is off, so kopf writes nothing to the objects or
the cluster (its default storages would patch an annotation onto every pod, a write no other peer
makes). The ``initial`` line comes with ``synced`` (kopf has no separate first pass of reconciles:
``on.update`` fires only on changes). Protocol: ``child``."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

from bench.peers import child


def main() -> None:
    args = child.parser(__doc__ or "").parse_args()
    channel = child.Channel()
    os.environ["KUBECONFIG"] = args.kubeconfig  # kopf.login_via_client reads the default location

    import kopf

    class MemoryDiffBase(kopf.DiffBaseStorage):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.essences: dict[str, Any] = {}

        def fetch(self, *, body: Any) -> Any:
            return self.essences.get(body["metadata"]["uid"])

        def store(self, *, body: Any, patch: Any, essence: Any) -> None:
            self.essences[body["metadata"]["uid"]] = essence

    class MemoryProgress(kopf.ProgressStorage):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.records: dict[tuple[str, str], Any] = {}

        def fetch(self, *, key: str, body: Any) -> Any:
            return self.records.get((body["metadata"]["uid"], key))

        def store(self, *, key: str, record: Any, body: Any, patch: Any) -> None:
            self.records[(body["metadata"]["uid"], key)] = record

        def purge(self, *, key: str, body: Any, patch: Any) -> None:
            self.records.pop((body["metadata"]["uid"], key), None)

        def touch(self, *, body: Any, patch: Any, value: str | None) -> None:
            pass

        def clear(self, *, essence: Any) -> Any:
            return super().clear(essence=essence)

    settings = kopf.OperatorSettings()
    settings.persistence.diffbase_storage = MemoryDiffBase()
    settings.persistence.progress_storage = MemoryProgress()
    settings.posting.enabled = False
    settings.scanning.disabled = True
    settings.peering.standalone = True
    registry = kopf.OperatorRegistry()
    events = child.Tracker(args.token, args.expect, args.updates)
    updates = child.Tracker(args.token, 0, args.updates)

    @kopf.on.login(registry=registry)  # type: ignore[misc]
    def login(**kwargs: Any) -> Any:
        return kopf.login_via_client(**kwargs)

    @kopf.on.event("pods", registry=registry)  # type: ignore[misc]
    async def on_event(uid: str, labels: Any, annotations: Any, **_: Any) -> None:
        events.see(uid, labels, annotations)

    @kopf.on.update("pods", registry=registry)  # type: ignore[misc]
    async def on_update(uid: str, labels: Any, annotations: Any, **_: Any) -> None:
        updates.see(uid, labels, annotations)

    stop: asyncio.Future[Any] | None = None
    rss0 = child.baseline()
    started, cpu_start = time.perf_counter(), child.cpu_seconds()

    def run() -> None:
        asyncio.run(
            kopf.operator(registry=registry, settings=settings, standalone=True, clusterwide=True, stop_flag=stop)
        )

    threading.Thread(target=run, daemon=True, name="kopf").start()
    if not events.initial.wait(args.timeout):
        raise SystemExit(f"kopf saw {len(events.seen)} of {args.expect} pods after {args.timeout} s")
    channel.emit("synced", **child.synced_fields(started, cpu_start, len(events.seen), rss0))
    cpu0 = child.cpu_seconds()
    events.done.wait(args.timeout)
    updates.done.wait(args.timeout)
    fields = events.events_fields(cpu0)
    reconciled = updates.events_fields(cpu0)
    fields["reconcile_latencies_ms"] = reconciled["latencies_ms"]
    fields["reconciled"] = reconciled["events"]
    fields["last_reconcile_t"] = reconciled["last_event_t"]
    fields["timed_out"] = fields["timed_out"] or reconciled["timed_out"]
    channel.emit("events", **fields)
    os._exit(0)


if __name__ == "__main__":
    main()
