"""What the Prometheus exporter costs: per observation, per reconcile, and per scrape.

Usage: ``.venv/bin/python bench/metrics_scrape.py [--objects N] [--controllers C] [--scrapes S]
[--keys K] [--runs R] [--backend asyncio|trio] [--live [--kubeconfig PATH]]``.

1. **hooks**: CPU microseconds per call of each hook the exporter hands out (``on_reconcile``,
   the work queue's ``on_get``/``on_done``/``on_add``, the REST client's ``request_done``), next to
   ``prometheus_client.Histogram.observe`` on a labelled child for comparison (best of 5 x 200,000).
2. **dispatch**: the ``reconcile_dispatch_bench.py`` path (enqueue -> no-op async reconcile ->
   done, ``WorkerPool`` over a ``RateLimitingQueue``) without and with the exporter's reconcile and
   work-queue hooks, runs alternated so machine noise hits both alike; process CPU microseconds
   per key.
3. **scrape**: one informer holding N objects (a real ``SharedInformer`` fed one list through its
   watcher; no apiserver: a scrape reads the same ``statistics()`` either way) and C controllers on
   it, each wired through its inline handler and done reconciling every object (histograms
   filled). Medians of S scrapes: ``MetricsExporter.render()`` in the calling thread, and a full
   ``GET /metrics`` over loopback from the ``metrics_server`` (the loop renders in a worker thread).
4. **live** (``--live``, instead of 1-3): the daemon's own setup on a real control plane (started
   here, or ``--kubeconfig`` of a running one): N ConfigMaps in one namespace, a ``Manager`` with C
   no-op reconcilers on ``v1/configmaps`` (one shared informer, 4 workers each) and ``/metrics`` on
   loopback, every controller done reconciling every object. Medians of S scrapes:
   ``manager.exporter.render()`` in a worker thread while the manager runs, and a full
   ``GET /metrics`` over HTTP (rest-client, leader-election-free, process metrics included).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
import timeit
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
from prometheus_client import CollectorRegistry, Histogram

from controllers import Context, Manager
from controllers._workers import WorkerPool
from controllers.controller import Controller
from controllers.metrics import MetricsExporter
from controllers.observers import RECONCILE_TIME_BUCKETS
from controllers.ratelimited import RateLimitingQueue
from controllers.request import Request
from controllers.servers import metrics_server
from informers.client import ApiClient
from informers.config import load_config
from informers.errors import AlreadyExistsError
from informers.informer import InformerOptions, SharedInformer
from informers.resources import Resource

PODS = Resource("", "v1", "pods", "Pod", True)


def hooks() -> None:
    exporter = MetricsExporter(process_metrics=False)
    reconcile = exporter.reconcile_metrics("bench")
    queue = exporter.workqueue_metrics("bench")
    rest = exporter.request_observer
    child = Histogram(
        "bench_seconds", "bench", ["controller"], buckets=RECONCILE_TIME_BUCKETS, registry=CollectorRegistry()
    ).labels("bench")
    calls: list[tuple[str, Any]] = [
        ("on_reconcile (ReconcileMetrics)", lambda: reconcile.on_reconcile("success", 0.0123)),
        ("on_get (WorkQueueMetrics)", lambda: queue.on_get(0.000123)),
        ("on_done (WorkQueueMetrics)", lambda: queue.on_done(0.0123)),
        ("on_add (WorkQueueMetrics, no-op)", lambda: queue.on_add()),
        (
            "request_done (RequestObserver)",
            lambda: rest.request_done(method="GET", host="10.0.0.1:6443", code="200", seconds=0.0123),
        ),
        ("prometheus_client Histogram.observe", lambda: child.observe(0.0123)),
        ("empty lambda (call overhead)", lambda: None),
    ]
    number = 200_000
    print("1. hooks: CPU us per call (best of 5 x 200,000)")
    for label, fn in calls:
        best = min(timeit.repeat(fn, number=number, repeat=5, timer=time.process_time)) / number * 1e6
        print(f"   {label:<40} {best:6.3f}")


async def _noop(request: Request, obj: Any, ctx: Any) -> None:
    return None


def _dispatch_run(keys: list[Request], with_metrics: bool, backend: str) -> float:
    exporter = MetricsExporter(process_metrics=False) if with_metrics else None
    queue: RateLimitingQueue[Request] = RateLimitingQueue(
        "bench", metrics=exporter.workqueue_metrics("bench") if exporter else None
    )
    pool = WorkerPool(
        queue,
        _noop,
        lambda request: None,
        name="bench",
        workers=1,
        metrics=exporter.reconcile_metrics("bench") if exporter else None,
    )
    for key in keys:
        queue.add(key)
    queue.shutdown()

    async def main() -> float:
        start = time.process_time()  # CPU, not wall time: other processes on the machine add no noise
        await pool.run()
        return time.process_time() - start

    return anyio.run(main, backend=backend) / len(keys) * 1e6


def dispatch(keys_n: int, runs: int, backend: str) -> None:
    keys = [Request("Widget", f"uid-{i:07d}", "bench", f"w-{i}") for i in range(keys_n)]
    without: list[float] = []
    with_: list[float] = []
    for _ in range(runs):
        without.append(_dispatch_run(keys, False, backend))
        with_.append(_dispatch_run(keys, True, backend))
    a, b = statistics.median(without), statistics.median(with_)
    print(f"2. dispatch: {keys_n} keys, async no-op reconciler, 1 worker, {runs} alternated runs, backend {backend}")
    print(f"   without hooks  median {a:6.2f} CPU us/key (min {min(without):.2f}, max {max(without):.2f})")
    print(f"   with hooks     median {b:6.2f} CPU us/key (min {min(with_):.2f}, max {max(with_):.2f})")
    print(f"   added          {b - a:+6.2f} CPU us/key ({(b - a) / a * 100:+.1f} %)")


class _Provider:
    """The one thing the controllers' factory must do here: hand out the pre-fed informer."""

    def __init__(self, informer: SharedInformer) -> None:
        self.informer = informer

    async def resolve(self, resource: Resource | str) -> Resource:
        return PODS

    def informer_for(self, resource: Resource, **kwargs: Any) -> SharedInformer:
        return self.informer


def _pod(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"pod-{i:05d}",
            "namespace": f"ns-{i % 5}",
            "uid": f"uid-{i:07d}",
            "resourceVersion": str(100 + i),
            "labels": {"app": f"app-{i % 50}"},
        },
        "spec": {"containers": [{"name": "main", "image": "registry.example/app:1.0"}]},
        "status": {"phase": "Running"},
    }


def scrape(objects: int, controllers_n: int, scrapes: int, backend: str) -> None:
    informer = SharedInformer(object(), PODS, options=InformerOptions(streaming_list=False))  # type: ignore[arg-type]
    informer.watcher.next_request()
    informer._apply(
        informer.watcher.on_list_page(
            {"metadata": {"resourceVersion": str(100 + objects)}, "items": [_pod(i) for i in range(objects)]}
        )
    )
    informer.watcher.on_applied()
    exporter = MetricsExporter()
    provider = _Provider(informer)
    controllers = [
        Controller(
            provider,
            PODS,
            _noop,
            name=f"controller-{c}",
            max_concurrent_reconciles=4,
            metrics=exporter.reconcile_metrics(f"controller-{c}"),
            queue_metrics=exporter.workqueue_metrics(f"controller-{c}"),
        )
        for c in range(controllers_n)
    ]
    exporter.informers = lambda: [informer]
    exporter.controllers = lambda: controllers
    results: dict[str, list[float]] = {"render": [], "http": []}
    size = 0

    async def main() -> None:
        nonlocal size
        server = metrics_server("127.0.0.1:0", exporter)
        assert server is not None
        async with anyio.create_task_group() as group:
            await group.start(server.serve)
            for controller in controllers:
                group.start_soon(controller.run)
            while any(c.statistics().workers.success_total < objects for c in controllers):
                await anyio.sleep(0.05)

            def measure() -> None:
                nonlocal size
                for _ in range(scrapes):
                    started = time.perf_counter()
                    body = exporter.render()
                    results["render"].append((time.perf_counter() - started) * 1e3)
                    started = time.perf_counter()
                    with urllib.request.urlopen(f"{server.url}/metrics", timeout=30) as answer:
                        size = len(answer.read())
                    results["http"].append((time.perf_counter() - started) * 1e3)
                assert len(body) > 0

            await anyio.to_thread.run_sync(measure)
            group.cancel_scope.cancel()

    anyio.run(main, backend=backend)
    stats = informer.statistics()
    print(
        f"3. scrape: {stats.objects} cached objects ({stats.store.bytes_held / 1e6:.1f} MB) in one informer, "
        f"{controllers_n} controllers x {objects} reconciles; {size:,} bytes, {scrapes} scrapes"
    )
    for label, values in results.items():
        print(
            f"   {label:<7} median {statistics.median(values):6.2f} ms (min {min(values):.2f}, max {max(values):.2f})"
        )


@contextlib.contextmanager
def _cluster(kubeconfig: str | None) -> Iterator[str]:
    if kubeconfig:
        yield kubeconfig
        return
    from informers.testing import ControlPlane

    started = time.perf_counter()
    with ControlPlane() as plane:
        print(f"   control plane up in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        yield str(plane.admin_kubeconfig)


def _configmap(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"cm-{i:05d}", "labels": {"app": f"app-{i % 50}"}},
        "data": {"index": str(i), "payload": "x" * 200},
    }


def _create_configmaps(kubeconfig: str, namespace: str, n: int) -> tuple[int, float]:
    """Create cm-0..n-1 in ``namespace`` (409s: already there); returns (created, seconds)."""
    with ApiClient(load_config(kubeconfig, qps=-1, pool_maxsize=16)) as admin:
        with contextlib.suppress(AlreadyExistsError):
            admin.request("POST", "/api/v1/namespaces", body={"metadata": {"name": namespace}})

        def one(i: int) -> int:
            try:
                admin.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", body=_configmap(i))
            except AlreadyExistsError:
                return 0
            return 1

        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            created = sum(pool.map(one, range(n), chunksize=64))
        return created, time.perf_counter() - started


async def _live_noop(ctx: Context) -> None:
    return None


def live(objects: int, controllers_n: int, scrapes: int, kubeconfig: str | None, backend: str) -> None:
    namespace = "bench-scrape"
    results: dict[str, list[float]] = {"render": [], "http": []}
    size = series = 0
    with _cluster(kubeconfig) as path:
        created, seconds = _create_configmaps(path, namespace, objects)
        print(f"   {created} ConfigMaps created in {seconds:.1f} s", file=sys.stderr, flush=True)
        manager = Manager(
            load_config(path), namespace=namespace, name="bench-scrape", metrics_bind_address="127.0.0.1:0"
        )
        for c in range(controllers_n):
            manager.reconcile("v1/configmaps", workers=4, name=f"controller-{c}")(_live_noop)

        async def main() -> None:
            nonlocal size, series
            async with anyio.create_task_group() as group:
                group.start_soon(manager.serve)
                started = time.perf_counter()
                with anyio.fail_after(600):
                    while len(manager.controllers) < controllers_n or any(
                        c.statistics().workers.success_total < objects for c in manager.controllers
                    ):
                        await anyio.sleep(0.1)
                print(
                    f"   {controllers_n} x {objects} reconciles done {time.perf_counter() - started:.1f} s after start",
                    file=sys.stderr,
                    flush=True,
                )
                exporter, url = manager.exporter, f"http://127.0.0.1:{manager.servers['metrics']}/metrics"
                assert exporter is not None

                def measure() -> None:
                    nonlocal size, series
                    for _ in range(scrapes):
                        started = time.perf_counter()
                        exporter.render()
                        results["render"].append((time.perf_counter() - started) * 1e3)
                        started = time.perf_counter()
                        with urllib.request.urlopen(url, timeout=30) as answer:
                            body = answer.read()
                        results["http"].append((time.perf_counter() - started) * 1e3)
                    size = len(body)
                    series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))

                await anyio.to_thread.run_sync(measure)
                cached = [i.statistics().objects for i in (manager.factory.informers if manager.factory else ())]
                group.cancel_scope.cancel()
            print(
                f"4. live scrape: {sum(cached)} cached objects in {len(cached)} informer(s) on a real apiserver, "
                f"{controllers_n} controllers x {objects} reconciles; {size:,} bytes ({series:,} samples), "
                f"{scrapes} scrapes"
            )

        anyio.run(main, backend=backend)
    for label, values in results.items():
        print(
            f"   {label:<7} median {statistics.median(values):6.2f} ms (min {min(values):.2f}, max {max(values):.2f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000, help="cached objects (default 10000)")
    parser.add_argument("--controllers", type=int, default=4, help="controllers on the informer (default 4)")
    parser.add_argument("--scrapes", type=int, default=50, help="scrapes to time (default 50)")
    parser.add_argument("--keys", type=int, default=20_000, help="keys per dispatch run (default 20000)")
    parser.add_argument("--runs", type=int, default=11, help="dispatch runs per variant (default 11)")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--live", action="store_true", help="only section 4: a Manager on a real control plane")
    parser.add_argument("--kubeconfig", help="with --live: a running control plane instead of starting one")
    args = parser.parse_args()
    if args.live:
        live(args.objects, args.controllers, args.scrapes, args.kubeconfig, args.backend)
        return
    hooks()
    dispatch(args.keys, args.runs, args.backend)
    scrape(args.objects, args.controllers, args.scrapes, args.backend)


if __name__ == "__main__":
    main()
