"""Soak: churn with faults for a given time while informers and a controller run, sampling this
process's resident memory, open file descriptors and threads.

Usage: ``.venv/bin/python bench/soak.py [--duration 1800] [--warmup S] [--seed N] [--out FILE]``.
Starts a local etcd + kube-apiserver (separate processes: their memory is not counted), a fault
proxy in this process, and behind it three ``SharedInformer``s (ConfigMaps; ConfigMaps with a label
selector, listed in pages; PodTemplates, paged) and a ``controllers.Manager`` whose async reconciler
applies one child ConfigMap per PodTemplate (``owns``) and deletes it when its parent is gone. A
writer (``informers.testing.churn.ChurnWriter``, straight to the apiserver) creates, updates,
deletes and deletes + re-creates objects under a fixed set of names while a seeded schedule cuts,
stalls (past the informers' idle deadline), refuses, slows and compacts etcd while the clients
are cut off.

Phases: start (synced, starting population) -> churn + faults for ``--warmup`` -> quiesce ->
churn + faults until ``--duration`` -> quiesce. Quiescing puts every name back (the object count
returns to the starting one), waits until every cache equals the server and the controller has one
child per parent and no orphans, idles ``--settle`` seconds (anyio retires idle worker threads
after 10 s) and collects garbage before it samples. Samples are taken every ``--interval`` (10 s)
as well. The summary gives start, after warm-up, max and end, and the RSS slope per minute after
warm-up (least squares over the samples since); ``--out`` writes every sample as JSON.

Columns: ``fds`` and ``threads`` are the whole process's; ``own fds`` / ``own thr`` leave out the
fault proxy's (its listener and acceptor, and a socket pair and a pump thread per proxied
connection), which is test equipment living in this process, not informerd. ``conns`` are the
clients' sockets to the proxy (informerd's connections), ``pooled`` those idle in the connection
pools, ``workers`` anyio's shared worker threads. At the three marks, ``rest fds`` (own fds less
pooled), ``rest conns`` (connections in use: one open watch per informer) and ``rest thr`` (own
threads less anyio's workers) are medians of 21 reads 50 ms apart, so a request in flight or a
thread that is ending does not count; the JSON also has, per mark, every thread by name and every
descriptor by kind. ``--tracemalloc N`` prints the N largest allocation growths after warm-up.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import gc
import json
import os
import random
import statistics
import sys
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio

from controllers import Context, Manager
from informers.client import ApiClient
from informers.config import load_config
from informers.events import Notification
from informers.informer import InformerOptions, SharedInformer
from informers.objects import controller_owner, object_key
from informers.resources import Resource
from informers.testing import ControlPlane, ControlPlaneError, FaultProxy
from informers.testing.churn import ChurnWriter, configmap_body, podtemplate_body

CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", namespaced=True)
PODTEMPLATES = Resource("", "v1", "podtemplates", "PodTemplate", namespaced=True)
# The informers' idle deadline: a stall lasts longer, so it is detected, not waited out. Watches
# end at the server's timeout before it (a quiet resource sends nothing between bookmarks, which
# come about once a minute): at rest every informer holds one watch, renewed every few seconds,
# rather than being taken for stalled.
IDLE = 6.0
WATCH_TIMEOUTS = (3, 5)
APISERVER_ARGS = ("--watch-cache-sizes=podtemplates#0",)  # uncached: compaction gives resuming watches a 410
FAULT_KINDS = ("cut", "stall", "refuse", "latency", "compaction")
MiB = 1024.0
RESTING_READS = 21  # 50 ms apart


# -- sampling -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    t: float
    """Seconds since the soak started."""
    phase: str
    rss_kib: int
    fds: int
    threads: int
    """OS threads of this process (``/proc/self/status``), Python's and native ones alike."""
    own_fds: int
    own_threads: int
    """``fds`` / ``threads`` without the fault proxy's (its listener, the two sockets of each
    proxied connection, its acceptor and pump threads): test equipment living in this process."""
    connections: int
    """The clients' sockets to the proxy, live or reset by it (``socket (closed)``: nothing else in
    this process has its peer reset): informerd's connections to the apiserver."""
    pooled: int
    """Of ``connections``, those idle in the two clients' pools (up to ``pool_maxsize`` per client;
    one whose peer was cut is closed only when it next comes up for reuse)."""
    workers: int
    """anyio's worker threads (a shared pool: an idle one exits after 10 s)."""
    cached: int
    """Objects in every informer's cache, the manager's included."""
    blocks: int = 0
    """Memory blocks Python's small-object allocator has handed out (``sys.getallocatedblocks()``):
    at a mark, after a full collection, it counts live objects regardless of how fragmented the
    arenas are, so a Python-level leak shows in it long before it shows in RSS."""
    resting_fds: int | None = None
    resting_connections: int | None = None
    resting_threads: int | None = None
    """At a mark only: the median of ``RESTING_READS`` reads of ``own_fds - pooled``,
    ``connections - pooled`` (the connections in use: one open watch per informer at rest) and
    ``own_threads - workers``. A request in flight at one instant (the informers' once-a-second
    progress checks), a watch being renewed, a thread that has left Python's list but not yet the
    kernel's: each shows in a read or two, never in most of them; a leak shows in all."""


def process_usage() -> tuple[int, int]:
    """(VmRSS in KiB, OS threads) of this process."""
    rss = threads = 0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, threads


def _socket_table() -> dict[str, tuple[int, int] | None]:
    """Socket inode -> (local port, remote port) for this network namespace's TCP sockets, or None
    for a Unix socket."""
    out: dict[str, tuple[int, int] | None] = {}
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6", "/proc/self/net/unix"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if table.endswith("unix"):
                if len(f) >= 7:
                    out[f[6]] = None
            else:
                out[f[9]] = (int(f[1].rsplit(":", 1)[1], 16), int(f[2].rsplit(":", 1)[1], 16))
    return out


def fd_kinds(roles: dict[int, str]) -> Counter[str]:
    """This process's file descriptors by kind: ``pipe``, ``anon_inode``, a file's path, ``socket
    (unix)``, for TCP sockets ``socket to <role>`` / ``socket at <role>`` by the port ``roles`` names
    (remote / local), and ``socket (closed)`` for one the kernel has unlisted (its peer reset it)
    while the process still holds it."""
    table = _socket_table()
    kinds: Counter[str] = Counter()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile (listdir's own descriptor of the directory among them)
        if target.startswith("socket:["):
            inode = target[8:-1]
            ports = table.get(inode, (0, 0)) if inode in table else None
            if inode not in table:
                kind = "socket (closed)"
            elif ports is None:
                kind = "socket (unix)"
            else:
                local, remote = ports
                if remote in roles:
                    kind = f"socket to {roles[remote]}"
                elif local in roles:
                    kind = f"socket at {roles[local]}" + ("" if remote else " (listening)")
                else:
                    kind = "socket (other)"
        else:
            kind = target.split(":[", 1)[0] if ":[" in target else target
        kinds[kind] += 1
    return kinds


def _open(sock: Any) -> bool:
    try:
        return sock is not None and sock.fileno() >= 0
    except OSError:
        return False


def pooled_connections(client: ApiClient) -> int:
    """Idle connections with an open socket in ``client``'s connection pools (one whose socket was
    closed under it, as aborting a request does, holds no descriptor)."""
    total = 0
    for key in list(client._pool.pools.keys()):
        pool = client._pool.pools.get(key)
        queue = getattr(pool, "pool", None)
        if queue is not None:
            total += sum(1 for conn in list(queue.queue) if conn is not None and _open(conn.sock))
    return total


# -- the system under soak ------------------------------------------------------------------------


def child_name(parent: str, uid: str) -> str:
    return f"{parent}-{uid[:8]}"  # one name per parent UID: a re-created parent never shares a child


LEAKS = ("memory", "thread", "fd")


class Counting:
    """A handler that counts notifications by type (keeping none: the soak must not grow by design).

    ``leak`` makes it leak on purpose, to show that the figures (and the CI test) catch it:
    ``memory`` keeps a copy of every notified object, ``thread`` starts a thread that never ends
    and ``fd`` opens ``/dev/null`` every 500th notification."""

    def __init__(self, leak: str | None = None) -> None:
        if leak not in (None, *LEAKS):
            raise ValueError(f"leak must be one of {LEAKS}, got {leak!r}")
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.leak = leak
        self._kept: list[Any] = []
        self._n = 0

    def __call__(self, note: Notification) -> None:
        with self._lock:
            self.counts[type(note).__name__] += 1
            self._n += 1
            if self.leak == "memory":
                self._kept.append(copy.deepcopy(note))
            elif self.leak == "thread" and self._n % 500 == 0:
                threading.Thread(target=threading.Event().wait, name="leaked on purpose", daemon=True).start()
            elif self.leak == "fd" and self._n % 500 == 0:
                self._kept.append(open(os.devnull, "rb"))  # noqa: SIM115 - kept open on purpose


def options(**overrides: Any) -> InformerOptions:
    base: dict[str, Any] = {
        "idle_timeout": IDLE,
        "backoff_initial": 0.1,
        "backoff_cap": 1.0,
        "watch_timeout_range": WATCH_TIMEOUTS,
        "progress_check_interval": 1.0,
    }
    return InformerOptions(**{**base, **overrides})


def _state(items: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    return {object_key(o): (o["metadata"]["uid"], o["metadata"]["resourceVersion"]) for o in items}


class Faults:
    """The network and etcd faults, one at a time on the calling thread; each ends before it returns."""

    def __init__(self, plane: ControlPlane, proxy: FaultProxy, rng: random.Random, kinds: tuple[str, ...]) -> None:
        self.plane, self.proxy, self.rng, self.kinds = plane, proxy, rng, kinds
        self.counts: Counter[str] = Counter()
        self._first = rng.sample(list(kinds), len(kinds))

    def inject(self, kind: str) -> None:
        if kind == "cut":
            self.proxy.cut()
        elif kind == "stall":
            self.proxy.stall()
            time.sleep(IDLE + 1.5)
            self.proxy.pass_through()
        elif kind == "refuse":
            self.proxy.refuse()
            self.proxy.cut()
            time.sleep(self.rng.uniform(0.5, 2.5))
            self.proxy.pass_through()
        elif kind == "latency":
            self.proxy.set_latency(self.rng.uniform(0.02, 0.15))
            time.sleep(self.rng.uniform(1.0, 3.0))
            self.proxy.set_latency(0)
        elif kind == "compaction":  # cut off, the writer goes on, compact to now, reconnect: 410s
            self.proxy.refuse()
            self.proxy.cut()
            time.sleep(self.rng.uniform(0.5, 1.5))
            with contextlib.suppress(ControlPlaneError):  # nothing written since the last compaction
                self.plane.compact_etcd()
            self.proxy.pass_through()
        else:
            raise ValueError(f"unknown fault kind {kind!r}")
        self.counts[kind] += 1

    def run_until(self, deadline: float, calm: tuple[float, float]) -> None:
        """Inject faults with calm gaps until ``deadline``: every kind once first (in a seeded order,
        so the warm-up has seen each), then seeded draws."""
        while time.monotonic() < deadline:
            self.inject(self._first.pop() if self._first else self.rng.choice(self.kinds))
            time.sleep(max(0.0, min(self.rng.uniform(*calm), deadline - time.monotonic())))
        self.proxy.pass_through()
        self.proxy.set_latency(0)


@dataclass
class SoakResult:
    seed: int
    duration: float
    warmup: float
    samples: list[Sample] = field(default_factory=list)
    marks: dict[str, Sample] = field(default_factory=dict)
    """The samples at quiescence: ``start``, ``after warm-up``, ``end``."""
    writes: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    converge_seconds: dict[str, float] = field(default_factory=dict)
    written_objects: dict[str, int] = field(default_factory=dict)
    """Objects on the server in the writer's collections at each mark (the starting count after a
    restore)."""
    failures: list[str] = field(default_factory=list)
    """What did not converge at a quiescent point (empty: every cache equalled the server and the
    controller had one child per parent)."""
    census: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    """Per mark: this process's threads by name and file descriptors by kind (what to compare
    when a count moved)."""
    informers: dict[str, dict[str, Any]] = field(default_factory=dict)
    reconciles: dict[str, int] = field(default_factory=dict)

    def rss_slope_mib_per_minute(self) -> float:
        """Least-squares slope of RSS over the samples since the end of the warm-up."""
        since = self.marks["after warm-up"].t
        points = [(s.t / 60.0, s.rss_kib / MiB) for s in self.samples if s.t >= since]
        if len(points) < 2:
            return 0.0
        mx = sum(x for x, _ in points) / len(points)
        my = sum(y for _, y in points) / len(points)
        var = sum((x - mx) ** 2 for x, _ in points)
        return sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0

    def table(self) -> str:
        rows: list[tuple[str, Sample]] = [
            (name, self.marks[name]) for name in ("start", "after warm-up") if name in self.marks
        ]
        peak = Sample(
            t=0.0,
            phase="max",
            rss_kib=max(s.rss_kib for s in self.samples),
            fds=max(s.fds for s in self.samples),
            threads=max(s.threads for s in self.samples),
            own_fds=max(s.own_fds for s in self.samples),
            own_threads=max(s.own_threads for s in self.samples),
            cached=max(s.cached for s in self.samples),
            connections=max(s.connections for s in self.samples),
            pooled=max(s.pooled for s in self.samples),
            workers=max(s.workers for s in self.samples),
        )
        rows.append(("max", peak))
        if "end" in self.marks:
            rows.append(("end", self.marks["end"]))
        lines = [
            f"{'':14} {'t s':>6} {'RSS MiB':>8} {'fds':>5} {'own fds':>8} {'conns':>6} {'pooled':>7} "
            f"{'threads':>8} {'own thr':>8} {'workers':>8} {'cached':>7} {'rest fds':>9} {'rest conns':>11} "
            f"{'rest thr':>9} {'blocks':>8}"
        ]

        def opt(value: int | None) -> str:
            return "" if value is None else str(value)

        for name, s in rows:
            t = "" if name == "max" else f"{s.t:.0f}"
            lines.append(
                f"{name:14} {t:>6} {s.rss_kib / MiB:8.1f} {s.fds:5d} {s.own_fds:8d} {s.connections:6d} {s.pooled:7d} "
                f"{s.threads:8d} {s.own_threads:8d} {s.workers:8d} {s.cached:7d} {opt(s.resting_fds):>9} "
                f"{opt(s.resting_connections):>11} {opt(s.resting_threads):>9} "
                f"{'' if name == 'max' else str(s.blocks):>8}"
            )
        lines.append(
            f"RSS slope after warm-up: {self.rss_slope_mib_per_minute():+.3f} MiB/min "
            f"over {sum(1 for s in self.samples if s.t >= self.marks['after warm-up'].t)} samples"
            if "after warm-up" in self.marks
            else "RSS slope after warm-up: n/a"
        )
        return "\n".join(lines)

    def census_change(self, before: str = "after warm-up", after: str = "end") -> str:
        """Threads by name and fds by kind whose count differs between two marks."""
        parts = []
        for what in ("threads", "fds"):
            a, b = self.census.get(before, {}).get(what, {}), self.census.get(after, {}).get(what, {})
            moved = {k: b.get(k, 0) - a.get(k, 0) for k in sorted(a.keys() | b.keys()) if a.get(k, 0) != b.get(k, 0)}
            parts.append(
                f"{what} {before} -> {after}: " + (", ".join(f"{k} {v:+d}" for k, v in moved.items()) or "same")
            )
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["rss_slope_mib_per_minute"] = self.rss_slope_mib_per_minute() if "after warm-up" in self.marks else None
        return out


class Soak:
    """The system under soak on ``plane``: use as a context manager, then ``run(...)``."""

    def __init__(
        self,
        plane: ControlPlane,
        *,
        seed: int,
        names: int = 30,
        write_interval: float = 0.02,
        sample_interval: float = 10.0,
        settle: float = 12.0,
        calm: tuple[float, float] = (0.5, 3.0),
        kinds: tuple[str, ...] = FAULT_KINDS,
        log: Callable[[str], None] = print,
        leak: str | None = None,
    ) -> None:
        self.plane = plane
        self.leak = leak
        self.seed = seed
        self.names = names
        self.write_interval = write_interval
        self.sample_interval = sample_interval
        self.settle = settle
        self.calm = calm
        self.kinds = kinds
        self.log = log
        self.rng = random.Random(seed)
        self._t0 = time.monotonic()
        self._phase = "setup"
        self._stop_sampling = threading.Event()
        self._stop_manager = threading.Event()
        self._threads: list[threading.Thread] = []
        self.informers: list[tuple[SharedInformer, Counting, str, str | None]] = []
        self.manager: Manager | None = None
        self.manager_error: BaseException | None = None
        self.reconciles: Counter[str] = Counter()
        self.snapshots: dict[str, tracemalloc.Snapshot] = {}

    # -- set-up and tear-down -----------------------------------------------------------------
    def __enter__(self) -> Soak:
        plane = self.plane
        suffix = f"{self.seed % 10**6:06d}"
        self.ns, self.ctl_ns = f"soak-{suffix}", f"soak-ctl-{suffix}"
        for ns in (self.ns, self.ctl_ns):
            plane.request_json("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
        self.proxy = FaultProxy("127.0.0.1", plane.apiserver_port).start()
        self.faults = Faults(plane, self.proxy, random.Random(self.seed + 2), self.kinds)
        kubeconfig = str(plane.kubeconfig(server=self.proxy.url))
        self.client = ApiClient(load_config(kubeconfig, qps=-1))
        self.manager_client = ApiClient(load_config(kubeconfig, qps=-1))
        cm, pt = CONFIGMAPS.path(self.ns), PODTEMPLATES.path(self.ns)
        self.parents_path, self.children_path = PODTEMPLATES.path(self.ctl_ns), CONFIGMAPS.path(self.ctl_ns)
        self.writer = ChurnWriter(
            plane,
            {cm: configmap_body, pt: podtemplate_body, self.parents_path: podtemplate_body},
            random.Random(self.seed + 1),
            names=self.names,
            track_deleted=False,
        )
        self.writer.populate()
        for informer, path, selector in (
            (SharedInformer(self.client, CONFIGMAPS, namespace=self.ns, options=options()), cm, None),
            (
                SharedInformer(
                    self.client,
                    CONFIGMAPS,
                    namespace=self.ns,
                    label_selector="half=1",
                    options=options(streaming_list=False, page_size=7),
                ),
                cm,
                "half=1",
            ),
            (
                SharedInformer(
                    self.client, PODTEMPLATES, namespace=self.ns, options=options(streaming_list=False, page_size=5)
                ),
                pt,
                None,
            ),
        ):
            counting = Counting(self.leak)
            informer.add_handler(on_notification=counting)
            informer.start()
            self.informers.append((informer, counting, path, selector))
        self._start_manager()
        deadline = time.monotonic() + 120
        while not self._synced():
            if time.monotonic() > deadline:
                raise TimeoutError("the soak's informers and controller did not sync in 120 s")
            time.sleep(0.1)
        self._spawn(self._sample_loop, "soak-sampler")
        return self

    def _start_manager(self) -> None:
        mgr = self.manager = Manager(
            client=self.manager_client,
            namespace=self.ctl_ns,
            name="soak",
            informer_options=options(),
            drain_timeout=10,
        )
        reconciles = self.reconciles

        @mgr.reconcile(PODTEMPLATES, owns=[CONFIGMAPS], workers=4, timeout=10)
        async def parent(ctx: Context) -> None:
            configmaps = ctx.api(CONFIGMAPS)
            if ctx.obj is None:  # gone (this control plane runs no garbage collector): delete the child
                for child in ctx.children(CONFIGMAPS):
                    await configmaps.delete(child["metadata"]["name"], uid=child["metadata"]["uid"])
                reconciles["cleanup"] += 1
                return
            version = ctx.obj["template"]["metadata"]["labels"]["v"]
            child = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": child_name(ctx.name, ctx.uid)},
                "data": {"v": version},
            }
            await configmaps.apply(ctx.own(child))
            reconciles["apply"] += 1

        async def serve() -> None:
            async with anyio.create_task_group() as group:
                group.start_soon(mgr.serve)
                while not self._stop_manager.is_set():
                    await anyio.sleep(0.2)
                group.cancel_scope.cancel()

        def run() -> None:
            try:
                anyio.run(serve)
            except BaseException as exc:  # noqa: BLE001 (reported by run() and quiesce(), never swallowed)
                self.manager_error = exc

        self._spawn(run, "soak-manager")

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _synced(self) -> bool:
        mgr = self.manager
        if self.manager_error is not None:
            raise RuntimeError(f"the manager failed: {self.manager_error!r}") from self.manager_error
        return (
            all(i.has_synced() for i, *_ in self.informers)
            and mgr is not None
            and mgr.factory is not None
            and len(mgr.controllers) == 1
            and len(mgr.factory.informers) == 2
            and all(i.has_synced() for i in mgr.factory.informers)
        )

    def __exit__(self, *exc: object) -> None:
        self.writer.stop()
        self.proxy.pass_through()
        self._stop_manager.set()
        self._stop_sampling.set()
        for thread in self._threads:
            thread.join(60)
        for informer, *_ in self.informers:
            informer.stop()
        self.client.close()
        self.manager_client.close()
        self.proxy.stop()

    # -- measuring -----------------------------------------------------------------------------
    def _roles(self) -> dict[int, str]:
        return {self.proxy.port: "proxy", self.plane.apiserver_port: "apiserver", self.plane.etcd_port: "etcd"}

    def sample(self) -> Sample:
        kinds = fd_kinds(self._roles())
        rss, threads = process_usage()
        names = Counter(t.name for t in threading.enumerate())
        pooled = pooled_connections(self.client) + pooled_connections(self.manager_client)
        fds = sum(kinds.values())
        # the proxy: its listener, each accepted socket and its twin to the apiserver; acceptor, pumps
        proxy_fds = kinds["socket at proxy (listening)"] + 2 * kinds["socket at proxy"]
        proxy_threads = names["fault-proxy-accept"] + names["fault-proxy-pump"]
        cached = sum(i.statistics().objects for i, *_ in self.informers)
        mgr = self.manager
        if mgr is not None and mgr.factory is not None:
            cached += sum(i.statistics().objects for i in mgr.factory.informers)
        return Sample(
            t=round(time.monotonic() - self._t0, 1),
            phase=self._phase,
            rss_kib=rss,
            fds=fds,
            threads=threads,
            own_fds=fds - proxy_fds,
            own_threads=threads - proxy_threads,
            connections=kinds["socket to proxy"] + kinds["socket (closed)"],
            pooled=pooled,
            workers=names["AnyIO worker thread"],
            cached=cached,
            blocks=sys.getallocatedblocks(),
        )

    def census(self) -> dict[str, dict[str, int]]:
        """Threads by name (Python's; native ones show only in the totals) and fds by kind."""
        threads = Counter(t.name for t in threading.enumerate())
        return {"threads": dict(sorted(threads.items())), "fds": dict(sorted(fd_kinds(self._roles()).items()))}

    def _sample_loop(self) -> None:
        while not self._stop_sampling.wait(self.sample_interval):
            self.result.samples.append(self.sample())

    # -- checking ------------------------------------------------------------------------------
    def failures(self) -> list[str]:
        """What is not converged now (empty: every cache equals the server, one child per parent)."""
        out: list[str] = []
        checks = [(i, p, s) for i, _, p, s in self.informers]
        mgr = self.manager
        assert mgr is not None and mgr.factory is not None
        for informer in mgr.factory.informers:
            path = PODTEMPLATES.path(self.ctl_ns) if informer.resource == PODTEMPLATES else self.children_path
            checks.append((informer, path, None))
        for informer, path, selector in checks:
            query = f"?labelSelector={selector}" if selector else ""
            server = _state(self.plane.request_json("GET", path + query)["items"])
            cache = _state(informer.store.list())
            if cache != server:
                missing, extra = sorted(set(server) - set(cache)), sorted(set(cache) - set(server))
                stale = sorted(k for k in set(server) & set(cache) if server[k] != cache[k])
                out.append(
                    f"{informer.name}: cache != server: missing={missing[:3]} extra={extra[:3]} stale={stale[:3]}"
                )
        parents = self.plane.request_json("GET", self.parents_path)["items"]
        children = [
            c
            for c in self.plane.request_json("GET", self.children_path)["items"]
            if (controller_owner(c) or {}).get("kind") == "PodTemplate"
        ]
        by_owner: dict[str, list[dict[str, Any]]] = {}
        for c in children:
            by_owner.setdefault(str((controller_owner(c) or {}).get("uid")), []).append(c)
        for p in parents:
            meta = p["metadata"]
            mine = by_owner.pop(meta["uid"], [])
            want = {"v": p["template"]["metadata"]["labels"]["v"]}
            if (
                len(mine) != 1
                or mine[0]["data"] != want
                or mine[0]["metadata"]["name"] != child_name(meta["name"], meta["uid"])
            ):
                out.append(
                    f"parent {meta['name']}: children {[(c['metadata']['name'], c.get('data')) for c in mine]}, want {want}"
                )
        if by_owner:
            out.append(f"{sum(len(v) for v in by_owner.values())} orphaned children")
        return out

    # -- the run -------------------------------------------------------------------------------
    def run(self, duration: float, warmup: float) -> SoakResult:
        self.result = SoakResult(seed=self.seed, duration=duration, warmup=warmup)
        self.quiesce("start", restore=False)
        self.churn(warmup, "warm-up")
        self.quiesce("after warm-up")
        self.churn(max(0.0, duration - (time.monotonic() - self._t0)), "soak")
        self.quiesce("end")
        r = self.result
        r.writes = dict(self.writer.ops)
        r.faults = dict(self.faults.counts)
        r.reconciles = dict(self.reconciles)
        mgr = self.manager
        assert mgr is not None and mgr.factory is not None
        counted = {i.name: dict(c.counts) for i, c, *_ in self.informers}
        for informer in [i for i, *_ in self.informers] + mgr.factory.informers:
            stats = informer.statistics()
            r.informers[informer.name] = {
                "objects": stats.objects,
                "notifications": counted.get(informer.name),
                "relists": stats.watcher.relists,
                "relist_causes": dict(stats.watcher.relist_causes),
                "watch_restarts": dict(stats.watcher.watch_restarts),
            }
        return r

    def churn(self, seconds: float, phase: str) -> None:
        self._phase = phase
        self.log(f"[{time.monotonic() - self._t0:6.0f} s] {phase}: churn + faults for {seconds:.0f} s")
        self.writer.start(self.write_interval)
        try:
            self.faults.run_until(time.monotonic() + seconds, self.calm)
        finally:
            self.writer.stop()

    def quiesce(self, mark: str, *, restore: bool = True) -> None:
        """Every name back, converged, idle ``settle`` s, garbage collected: then the mark's sample."""
        self._phase = f"quiesce ({mark})"
        started = time.monotonic()
        if restore:
            self.writer.restore()
        failures = ["not checked"]
        while time.monotonic() - started < 180:
            if self.manager_error is not None:
                raise RuntimeError(f"the manager failed: {self.manager_error!r}") from self.manager_error
            try:
                failures = self.failures()
            except (ControlPlaneError, OSError) as exc:
                failures = [f"server unreadable: {exc}"]
            if not failures:
                break
            time.sleep(0.5)
        self.result.converge_seconds[mark] = round(time.monotonic() - started, 1)
        self.result.written_objects[mark] = sum(
            len(self.plane.request_json("GET", path)["items"]) for path in self.writer.paths
        )
        self.result.failures += [f"{mark}: {f}" for f in failures]
        time.sleep(self.settle)
        gc.collect()
        if tracemalloc.is_tracing():
            self.snapshots[mark] = tracemalloc.take_snapshot()
        reads = []
        for _ in range(RESTING_READS):
            reads.append(self.sample())
            time.sleep(0.05)
        sample = dataclasses.replace(
            reads[0],
            resting_fds=statistics.median_low(r.own_fds - r.pooled for r in reads),
            resting_connections=statistics.median_low(r.connections - r.pooled for r in reads),
            resting_threads=statistics.median_low(r.own_threads - r.workers for r in reads),
        )
        self.result.samples.append(sample)
        self.result.marks[mark] = sample
        self.result.census[mark] = self.census()
        self.log(
            f"[{sample.t:6.0f} s] {mark}: converged in {self.result.converge_seconds[mark]:.1f} s"
            f"{'' if not failures else ' NOT: ' + '; '.join(failures[:3])}; RSS {sample.rss_kib / MiB:.1f} MiB, "
            f"fds {sample.fds} (own {sample.own_fds} at rest {sample.resting_fds}; connections in use at rest "
            f"{sample.resting_connections}, idle pooled {sample.pooled}), "
            f"threads {sample.threads} (own {sample.own_threads}, anyio workers {sample.workers}, "
            f"at rest {sample.resting_threads}); {sample.blocks} allocated blocks"
        )


@contextmanager
def control_plane() -> Iterator[ControlPlane]:
    with ControlPlane(apiserver_args=APISERVER_ARGS) as plane:
        yield plane


def run_soak(
    plane: ControlPlane, *, duration: float, warmup: float, seed: int, log: Callable[[str], None] = print, **kw: Any
) -> SoakResult:
    with Soak(plane, seed=seed, log=log, **kw) as soak:
        return soak.run(duration, warmup)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=120.0, help="seconds in all (default 120)")
    parser.add_argument("--warmup", type=float, default=None, help="seconds of warm-up (default: a sixth, 20-300 s)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--names", type=int, default=30, help="names per collection (the starting population)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--settle", type=float, default=12.0)
    parser.add_argument(
        "--tracemalloc",
        type=int,
        default=0,
        metavar="N",
        help="trace allocations; print the N largest growths after warm-up",
    )
    parser.add_argument("--leak", choices=LEAKS, help="leak on purpose (see Counting): the figures must show it")
    parser.add_argument("--out", type=Path, default=Path("bench/results/soak.json"))
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    warmup = args.warmup if args.warmup is not None else min(300.0, max(20.0, args.duration / 6))
    print(f"soak: seed {seed}, {args.duration:.0f} s, warm-up {warmup:.0f} s, {args.names} names per collection")
    if args.tracemalloc:
        tracemalloc.start(10)
    with (
        control_plane() as plane,
        Soak(
            plane, seed=seed, names=args.names, sample_interval=args.interval, settle=args.settle, leak=args.leak
        ) as soak,
    ):
        result = soak.run(args.duration, warmup)
        if args.tracemalloc and {"after warm-up", "end"} <= soak.snapshots.keys():
            growth = soak.snapshots["end"].compare_to(soak.snapshots["after warm-up"], "traceback")
            print(f"largest allocation growths after warm-up (tracemalloc, {args.tracemalloc}):")
            for stat in growth[: args.tracemalloc]:
                print(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks")
                for line in stat.traceback.format()[-12:]:
                    print("      " + line)
    print(f"writes: {result.writes}")
    print(f"faults: {result.faults}")
    print(f"reconciles: {result.reconciles}")
    for name, stats in result.informers.items():
        print(f"  {name}: relists {stats['relists']} {stats['relist_causes']}, re-watches {stats['watch_restarts']}")
    print(result.table())
    if result.failures:
        print("NOT CONVERGED:\n  " + "\n  ".join(result.failures))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"command": " ".join([Path(sys.executable).name, *sys.argv]), **result.to_json()}
    args.out.write_text(json.dumps(report, indent=1, default=str))
    print(f"samples written to {args.out}")
    return 1 if result.failures else 0


if __name__ == "__main__":
    sys.exit(main())
