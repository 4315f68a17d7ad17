"""Informer sync benchmark: informerd side by side with client-go and the official Python client.

Starts a control plane (or uses ``--kubeconfig`` of a running one without controllers, e.g.
``python -m informers.testing up``), creates N realistic pods (~6.7 KB of JSON each, managedFields
~3 KB of it: created with POST by one manager, status patched by a "kubelet" manager; they stay
Pending-but-Running-looking since no scheduler or kubelet runs), then measures each scenario in a
fresh child process, ``--runs`` times, interleaved so machine noise hits every scenario alike:

  sync s      start -> ``has_synced`` of an all-namespaces pod informer (one no-op handler added
              before start); for the official client, one ``list_pod_for_all_namespaces`` into a dict
  hsync s     start -> the handler has handled the initial list (client-go ``registration.HasSynced``)
  CPU s       the child's CPU-seconds (every thread) from start to that handler sync
  RSS MB      VmRSS after sync and a GC, minus VmRSS after imports and client setup: the cache's cost
              (Go: after ``runtime.GC()``, without returning freed pages; JSON also has the live heap)
  B/pod       that RSS growth divided by the cached pods
  peak MB     VmHWM minus the same baseline: the high-water mark while loading
  ev/s        after sync the parent patches a label on M pods with 8 threads; handler-seen updates per
              second between the first and the last one (bounded by the write rate: see w/s)
  lag s       last update seen by the handler minus the last patch acknowledged
  CPU us/ev   the child's CPU time from sync until the M-th update, per update (the cost that
              decides the rate once writes are faster than the informer)

client-go talks protobuf for pods unless told otherwise (its typed clients prefer protobuf for
built-in types); ``client-go-json-strip`` forces JSON, what it talks for custom resources.

Ratios are peer median / informerd median from the same invocation. Raw results go to
``bench/results/informer_sync-<time>.json``. The client-go program (``bench/clientgo``) is built
with the machine's Go into ``~/.cache/informerd/bench`` on first use, keyed by a hash of its source.

Usage: .venv/bin/python bench/informer_sync.py [-n 10000] [--runs 3] [--updates 5000]
         [--scenarios informerd,client-go-list-strip,...] [--kubeconfig PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
LABEL = "bench=informer-sync"
TICK_LABEL = "bench-tick"
INITIAL_TICK = "x00x00-000000"  # same width as every later tick, so pod sizes never change


@dataclass(frozen=True)
class Scenario:
    name: str
    peer: str  # informerd | client-go | kubernetes
    description: str
    child_args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


SCENARIOS = {
    s.name: s
    for s in (
        Scenario(
            "informerd",
            "informerd",
            "defaults: streaming list (sendInitialEvents), managedFields stripped",
            ("--streaming",),
        ),
        Scenario("informerd-list", "informerd", "LIST pages of 500 (RV=0), managedFields stripped"),
        Scenario(
            "informerd-keep-mf",
            "informerd",
            "streaming list, transform=None (managedFields kept)",
            ("--streaming", "--keep-managed-fields"),
        ),
        Scenario(
            "client-go-list-strip",
            "client-go",
            "protobuf (client-go's default for pods), LIST (WatchListClient off), managedFields stripped",
            ("-strip-managed-fields",),
            {"KUBE_FEATURE_WatchListClient": "false"},
        ),
        Scenario(
            "client-go-strip",
            "client-go",
            "protobuf (default), streaming (WatchListClient on, default), managedFields stripped",
            ("-strip-managed-fields",),
        ),
        Scenario("client-go", "client-go", "defaults (protobuf for pods, streaming list, managedFields kept)"),
        Scenario(
            "client-go-json-strip",
            "client-go",
            "JSON forced (what client-go talks for CRDs), streaming, managedFields stripped",
            ("-strip-managed-fields", "-json"),
        ),
        Scenario("kubernetes", "kubernetes", "official client: list_pod_for_all_namespaces -> dict of V1Pod; Watch"),
    )
}
DEFAULT_SCENARIOS = (
    "informerd",
    "informerd-list",
    "informerd-keep-mf",
    "client-go-list-strip",
    "client-go-strip",
    "client-go",
    "kubernetes",
)


# --- memory and CPU of this process (children) -----------------------------------------------------


def proc_status_kb(field_name: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field_name} not in /proc/self/status")


def cpu_seconds() -> float:
    return time.process_time()  # every thread of the process, at clock_gettime resolution


def protocol_stream() -> IO[str]:
    """The child's result channel: the real stdout; everything else printed goes to stderr."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # structlog and print() now land in the child's log, not in the protocol
    return out


class TickCounter:
    """Counts updates whose tick label starts with the token; a plain handler (one thread calls it)."""

    def __init__(self, token: str, want: int) -> None:
        self.token, self.want = token, want
        self.seen = 0
        self.first = self.last = 0.0
        self.done = threading.Event()
        if want <= 0:
            self.done.set()

    def see(self, labels: dict[str, str] | None) -> None:
        tick = (labels or {}).get(TICK_LABEL, "")
        if not self.token or not tick.startswith(self.token):
            return
        now = time.time()
        if not self.seen:
            self.first = now
        self.last = now
        self.seen += 1
        if self.seen == self.want:
            self.done.set()

    def result(self, cpu0: float) -> dict[str, Any]:
        return {
            "phase": "events",
            "events": self.seen,
            "first_event_t": self.first,
            "last_event_t": self.last,
            "cpu_s": cpu_seconds() - cpu0,
            "timed_out": self.seen < self.want,
        }


def child_informerd(args: argparse.Namespace) -> None:
    out = protocol_stream()
    import gc

    from informers.client import ApiClient
    from informers.config import load_config
    from informers.informer import InformerOptions, SharedInformer
    from informers.objects import strip_managed_fields
    from informers.resources import Resource

    client = ApiClient(load_config(args.kubeconfig, qps=args.qps, burst=args.burst))
    gc.collect()
    rss0 = proc_status_kb("VmRSS")
    informer = SharedInformer(
        client,
        Resource("", "v1", "pods", "Pod", namespaced=True),
        transform=None if args.keep_managed_fields else strip_managed_fields,
        options=InformerOptions(streaming_list=args.streaming),
    )
    ticks = TickCounter(args.token, args.updates)
    registration = informer.add_handler(
        on_add=lambda obj: None, on_update=lambda old, new: ticks.see(new["metadata"].get("labels"))
    )
    started = time.perf_counter()
    cpu_start = cpu_seconds()
    informer.start()
    if not informer.wait_synced_blocking(args.timeout):
        raise SystemExit(f"informer not synced after {args.timeout} s: {informer.last_error!r}")
    sync_s = time.perf_counter() - started
    while not registration.has_synced():
        time.sleep(0.001)
    handler_sync_s = time.perf_counter() - started
    cpu_sync_s = cpu_seconds() - cpu_start  # to the handler's sync, as the Go child measures it
    gc.collect()
    stats = informer.statistics()
    out.write(
        json.dumps(
            {
                "phase": "synced",
                "sync_s": sync_s,
                "handler_sync_s": handler_sync_s,
                "cpu_sync_s": cpu_sync_s,
                "objects": stats.objects,
                "rss_base_kb": rss0,
                "rss_kb": proc_status_kb("VmRSS"),
                "peak_rss_kb": proc_status_kb("VmHWM"),
                "bytes_held": stats.store.bytes_held,
                "list_pages": stats.watcher.list_pages,
                "requests": {f"{m} {c}": n for (m, c), n in client.statistics().requests.items()},
            }
        )
        + "\n"
    )
    cpu0 = cpu_seconds()
    ticks.done.wait(args.timeout)
    out.write(json.dumps(ticks.result(cpu0)) + "\n")
    out.flush()
    os._exit(0)  # the informer's threads hold nothing worth a clean stop here


def child_kubernetes(args: argparse.Namespace) -> None:
    """What a hand-rolled loop on the official client does: list into a dict of models, then watch."""
    out = protocol_stream()
    import gc

    from kubernetes import client as kclient
    from kubernetes import config as kconfig
    from kubernetes import watch as kwatch

    kconfig.load_kube_config(config_file=args.kubeconfig)
    api = kclient.CoreV1Api()
    gc.collect()
    rss0 = proc_status_kb("VmRSS")
    started = time.perf_counter()
    resp: Any = api.list_pod_for_all_namespaces()
    cache = {f"{p.metadata.namespace}/{p.metadata.name}": p for p in resp.items}
    rv = resp.metadata.resource_version
    del resp
    sync_s = time.perf_counter() - started
    gc.collect()
    out.write(
        json.dumps(
            {
                "phase": "synced",
                "sync_s": sync_s,
                "handler_sync_s": sync_s,
                "objects": len(cache),
                "rss_base_kb": rss0,
                "rss_kb": proc_status_kb("VmRSS"),
                "peak_rss_kb": proc_status_kb("VmHWM"),
            }
        )
        + "\n"
    )
    cpu0 = cpu_seconds()
    ticks = TickCounter(args.token, args.updates)
    deadline = time.monotonic() + args.timeout
    while not ticks.done.is_set() and time.monotonic() < deadline:
        w = kwatch.Watch()
        for event in w.stream(
            api.list_pod_for_all_namespaces,
            resource_version=rv,
            timeout_seconds=max(1, int(deadline - time.monotonic())),
        ):
            pod: Any = event["object"]
            key = f"{pod.metadata.namespace}/{pod.metadata.name}"
            rv = pod.metadata.resource_version
            if event["type"] == "DELETED":
                cache.pop(key, None)
                continue
            cache[key] = pod
            if event["type"] == "MODIFIED":
                ticks.see(pod.metadata.labels)
                if ticks.done.is_set():
                    w.stop()
    out.write(json.dumps(ticks.result(cpu0)) + "\n")
    out.flush()
    os._exit(0)


# --- the pods ----------------------------------------------------------------------------------------


def make_pod(i: int, namespace: str, rng: random.Random) -> dict[str, Any]:
    """Pod i of the data set: 2 containers with env, ports, resources, a volume, tolerations."""
    app = f"app-{i % 97}"
    a, b, c, d, e = (rng.getrandbits(bits) for bits in (32, 16, 16, 16, 48))
    owner_uid = f"{a:08x}-{b:04x}-{c:04x}-{d:04x}-{e:012x}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(i),
            "namespace": namespace,
            "labels": {
                "app": app,
                "pod-template-hash": f"{rng.getrandbits(32):08x}",
                "tier": "backend",
                "bench": "informer-sync",
                TICK_LABEL: INITIAL_TICK,
            },
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9090",
                "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z",
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": f"{app}-rs",
                    "uid": owner_uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "containers": [
                {
                    "name": f"container-{c}",
                    "image": f"registry.example.com/{app}/server:v1.{rng.randrange(100)}.{rng.randrange(100)}",
                    "imagePullPolicy": "IfNotPresent",
                    "env": [{"name": f"ENV_{j}", "value": f"value-{rng.getrandbits(48):012x}"} for j in range(3)],
                    "ports": [{"containerPort": 8080 + c, "protocol": "TCP", "name": f"http-{c}"}],
                    "resources": {
                        "limits": {"cpu": "500m", "memory": "512Mi"},
                        "requests": {"cpu": "100m", "memory": "128Mi"},
                    },
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/config"}],
                }
                for c in range(2)
            ],
            "volumes": [{"name": "config", "configMap": {"name": f"{app}-config"}}],
            "nodeName": f"node-{rng.randrange(200)}",
            "tolerations": [
                {
                    "key": f"node.kubernetes.io/{k}",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                }
                for k in ("not-ready", "unreachable")
            ],
        },
    }


def pod_status(pod: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    ip = f"10.244.{rng.randrange(256)}.{rng.randrange(256)}"
    return {
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": t, "status": "True", "lastTransitionTime": "2026-01-01T00:00:05Z"}
                for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
            ],
            "hostIP": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": "2026-01-01T00:00:01Z",
            "containerStatuses": [
                {
                    "name": c["name"],
                    "ready": True,
                    "restartCount": 0,
                    "started": True,
                    "image": c["image"],
                    "imageID": f"sha256:{rng.getrandbits(256):064x}",
                    "containerID": f"containerd://{rng.getrandbits(256):064x}",
                    "state": {"running": {"startedAt": "2026-01-01T00:00:04Z"}},
                }
                for c in pod["spec"]["containers"]
            ],
        }
    }


def pod_name(i: int) -> str:
    return f"bench-{i:06d}"


def pod_path(i: int, namespaces: int) -> str:
    return f"/api/v1/namespaces/bench-{i % namespaces}/pods/{pod_name(i)}"


def create_pods(client: Any, n: int, namespaces: int, workers: int) -> tuple[int, float]:
    """Create pods 0..n-1 (409s are taken as already there); returns (created, seconds)."""
    from informers.errors import AlreadyExistsError

    for k in range(namespaces):
        with contextlib.suppress(AlreadyExistsError):
            client.request(
                "POST",
                "/api/v1/namespaces",
                body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"bench-{k}"}},
            )

    def one(i: int) -> int:
        rng = random.Random(i)
        ns = f"bench-{i % namespaces}"
        pod = make_pod(i, ns, rng)
        try:
            client.request("POST", f"/api/v1/namespaces/{ns}/pods", query={"fieldManager": "bench-deployer"}, body=pod)
        except AlreadyExistsError:
            return 0
        client.request(
            "PATCH",
            pod_path(i, namespaces) + "/status",
            query={"fieldManager": "kubelet"},
            body=pod_status(pod, rng),
            content_type="application/strategic-merge-patch+json",
        )
        return 1

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        created = sum(pool.map(one, range(n), chunksize=64))
    return created, time.perf_counter() - started


def patch_ticks(client: Any, token: str, m: int, n: int, namespaces: int, workers: int) -> tuple[float, float]:
    """Set the tick label of pods 0..m-1 (mod n) to ``token-i``; returns (first sent, last acked) times."""

    def one(i: int) -> None:
        client.request(
            "PATCH",
            pod_path(i % n, namespaces),
            query={"fieldManager": "bench-deployer"},
            body={"metadata": {"labels": {TICK_LABEL: f"{token}-{i:06d}"}}},
            content_type="application/merge-patch+json",
        )

    first = time.time()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(m), chunksize=16))
    return first, time.time()


# --- the client-go program ---------------------------------------------------------------------------


def clientgo_binary() -> Path:
    """Build bench/clientgo with the machine's Go into the informerd cache (once per source hash)."""
    import hashlib
    import shutil

    from informers.testing.assets import cache_dir

    src = BENCH_DIR / "clientgo"
    go = shutil.which("go") or "/usr/local/go/bin/go"
    digest = hashlib.sha256()
    for name in ("main.go", "go.mod", "go.sum"):
        digest.update((src / name).read_bytes())
    digest.update(subprocess.run([go, "version"], capture_output=True, check=True).stdout)
    target = cache_dir() / "bench" / f"clientgo-informer-{digest.hexdigest()[:12]}"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    print(f"building {target} with {go} ...", file=sys.stderr, flush=True)
    env = {**os.environ, "GOFLAGS": "-buildvcs=false"}
    proc = subprocess.run(
        [go, "build", "-trimpath", "-o", str(tmp), "."],
        cwd=src,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise SystemExit(f"building the client-go bench failed:\n{proc.stdout[-3000:]}")
    tmp.replace(target)  # appears only complete
    return target


# --- the driver --------------------------------------------------------------------------------------


@contextmanager
def cluster(kubeconfig: str | None) -> Iterator[str]:
    if kubeconfig:
        yield kubeconfig
        return
    from informers.testing import ControlPlane

    started = time.perf_counter()
    with ControlPlane() as plane:
        print(f"control plane up in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        yield str(plane.admin_kubeconfig)


def child_argv(scenario: Scenario, args: argparse.Namespace, kubeconfig: str, token: str) -> list[str]:
    if scenario.peer == "client-go":
        return [
            str(clientgo_binary()),
            "-kubeconfig",
            kubeconfig,
            "-qps",
            str(args.qps),
            "-burst",
            str(args.burst),
            "-updates",
            str(args.updates),
            "-token",
            token,
            "-timeout",
            f"{args.timeout}s",
            *scenario.child_args,
        ]
    return [
        sys.executable,
        __file__,
        "--child",
        scenario.peer,
        "--kubeconfig",
        kubeconfig,
        "--qps",
        str(args.qps),
        "--burst",
        str(args.burst),
        "--updates",
        str(args.updates),
        "--token",
        token,
        "--timeout",
        str(args.timeout),
        *scenario.child_args,
    ]


def run_one(
    scenario: Scenario, args: argparse.Namespace, kubeconfig: str, writer: Any, token: str, log: IO[bytes]
) -> dict[str, Any]:
    log.write(f"\n=== {scenario.name} token={token}\n".encode())
    log.flush()
    proc = subprocess.Popen(
        child_argv(scenario, args, kubeconfig, token),
        stdout=subprocess.PIPE,
        stderr=log,
        env={**os.environ, **scenario.env},
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout
    assert stdout is not None

    def pump() -> None:  # a reader thread, so each wait below can time out
        for line in stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()

    def next_line(what: str) -> dict[str, Any]:
        try:
            return json.loads(lines.get(timeout=args.timeout + 30))  # type: ignore[no-any-return]
        except queue.Empty:
            proc.kill()
            raise SystemExit(f"{scenario.name}: no {what} line (see the child log {log.name})") from None
        except json.JSONDecodeError as exc:
            proc.kill()
            raise SystemExit(f"{scenario.name}: bad {what} line: {exc}") from None

    synced = next_line("synced")
    first_sent = last_acked = 0.0
    if args.updates:
        first_sent, last_acked = patch_ticks(writer, token, args.updates, args.n, args.namespaces, args.writers)
    events = next_line("events")
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
    result = {"scenario": scenario.name, **synced, **{f"ev_{k}": v for k, v in events.items()}}
    objects = max(1, synced["objects"])
    result["rss_mb"] = (synced["rss_kb"] - synced["rss_base_kb"]) / 1024
    result["bytes_per_pod"] = (synced["rss_kb"] - synced["rss_base_kb"]) * 1024 / objects
    result["peak_mb"] = (synced["peak_rss_kb"] - synced["rss_base_kb"]) / 1024
    if args.updates:
        seen = events["events"]
        result["write_per_s"] = args.updates / max(1e-9, last_acked - first_sent)
        span = events["last_event_t"] - events["first_event_t"]
        result["events_per_s"] = seen / span if seen > 1 and span > 0 else 0.0
        result["lag_s"] = events["last_event_t"] - last_acked if seen else float("nan")
        result["cpu_us_per_event"] = events["cpu_s"] / seen * 1e6 if seen else float("nan")
    return result


COLUMNS = (  # (key, header, format)
    ("sync_s", "sync s", "{:.2f}"),
    ("handler_sync_s", "hsync s", "{:.2f}"),
    ("cpu_sync_s", "CPU s", "{:.2f}"),
    ("rss_mb", "RSS MB", "{:.1f}"),
    ("bytes_per_pod", "B/pod", "{:,.0f}"),
    ("peak_mb", "peak MB", "{:.1f}"),
    ("events_per_s", "ev/s", "{:,.0f}"),
    ("write_per_s", "w/s", "{:,.0f}"),
    ("lag_s", "lag s", "{:.2f}"),
    ("cpu_us_per_event", "CPU us/ev", "{:,.0f}"),
)
RATIO_KEYS = (
    ("sync_s", "x sync"),
    ("cpu_sync_s", "x CPUs"),
    ("rss_mb", "x RSS"),
    ("cpu_us_per_event", "x CPU"),
)


def medians(results: Sequence[dict[str, Any]]) -> dict[str, float]:
    keys = [k for k, _, _ in COLUMNS if k in results[0]]
    return {k: statistics.median(r[k] for r in results) for k in keys}


def render(table: dict[str, dict[str, float]], base: str) -> str:
    keys = [k for k, _, _ in COLUMNS if any(k in row for row in table.values())]
    header = f"{'scenario':<21}" + "".join(f"{h:>10}" for k, h, _ in COLUMNS if k in keys)
    header += "".join(f"{h:>8}" for _, h in RATIO_KEYS)
    lines = [header]
    for name, row in table.items():
        cells = "".join(f"{fmt.format(row[k]) if k in row else '-':>10}" for k, _, fmt in COLUMNS if k in keys)
        ratios = "".join(
            f"{row[k] / table[base][k]:>8.2f}" if k in row and table[base].get(k) else f"{'-':>8}"
            for k, _ in RATIO_KEYS
        )
        lines.append(f"{name:<21}{cells}{ratios}")
    return "\n".join(lines)


def detail(scenario: Scenario, results: Sequence[dict[str, Any]]) -> str:
    """What the medians hide: how the list was served, and Go's own view of its memory."""
    first = results[0]
    if scenario.peer == "informerd":
        return f"; list pages: {first['list_pages']}"
    if scenario.peer == "client-go":
        heap = statistics.median(r["heap_alloc_bytes"] for r in results) / 2**20
        freed = statistics.median(r["rss_after_free_kb"] - r["rss_base_kb"] for r in results) / 1024
        return (
            f"; wire {first.get('wire', '?')}, watch-list {'on' if first['watch_list'] else 'off'},"
            f" live heap {heap:.1f} MB,"
            f" RSS after FreeOSMemory {freed:.1f} MB"
        )
    return ""


def machine_note() -> dict[str, Any]:
    import platform

    import orjson

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "orjson": orjson.__version__,
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg(),
    }
    try:
        import kubernetes

        info["kubernetes_client"] = kubernetes.__version__
    except ImportError:
        pass
    return info


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=10_000, help="pods to create and cache (default 10000)")
    parser.add_argument("--runs", type=int, default=3, help="child processes per scenario (default 3)")
    parser.add_argument("--updates", type=int, default=3000, help="label patches after sync (default 3000; 0: none)")
    parser.add_argument(
        "--scenarios", default=",".join(DEFAULT_SCENARIOS), help=f"comma-separated, from: {', '.join(SCENARIOS)}"
    )
    parser.add_argument("--namespaces", type=int, default=5, help="namespaces the pods are spread over (default 5)")
    parser.add_argument("--writers", type=int, default=8, help="threads creating and patching pods (default 8)")
    parser.add_argument("--kubeconfig", help="use this running cluster (no controllers) instead of starting one")
    parser.add_argument("--qps", type=float, default=5.0, help="client QPS of the informers (default 5, as client-go)")
    parser.add_argument("--burst", type=int, default=10, help="client burst of the informers (default 10)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds a child may take per phase")
    parser.add_argument("--settle", type=float, default=1.0, help="pause between children, seconds (default 1)")
    parser.add_argument("--child", choices=("informerd", "kubernetes"), help=argparse.SUPPRESS)
    parser.add_argument("--token", default="", help=argparse.SUPPRESS)
    parser.add_argument("--streaming", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--keep-managed-fields", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        (child_informerd if args.child == "informerd" else child_kubernetes)(args)
        return

    chosen = [SCENARIOS[s] for s in args.scenarios.split(",") if s]
    unknown = [s for s in args.scenarios.split(",") if s and s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)}")
    if any(s.peer == "client-go" for s in chosen):
        clientgo_binary()  # build before the clock starts
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_path = RESULTS_DIR / f"informer_sync-{stamp}.log"
    note = machine_note()
    from informers.client import ApiClient
    from informers.config import load_config

    all_results: list[dict[str, Any]] = []
    with cluster(args.kubeconfig) as kubeconfig, log_path.open("wb") as log:
        writer = ApiClient(load_config(kubeconfig, qps=-1, pool_maxsize=args.writers * 2))
        created, seconds = create_pods(writer, args.n, args.namespaces, args.writers)
        sample = writer.get_json(pod_path(0, args.namespaces))
        size = len(json.dumps(sample, separators=(",", ":")))
        sample["metadata"].pop("managedFields", None)
        size_stripped = len(json.dumps(sample, separators=(",", ":")))
        print(
            f"{created} pods created in {seconds:.1f} s ({created / max(seconds, 1e-9):,.0f}/s; "
            f"{args.n - created} already there); pod JSON {size:,} B, {size_stripped:,} B without managedFields",
            file=sys.stderr,
            flush=True,
        )
        # Per invocation, so a reused cluster never gets a patch that changes nothing (no event).
        nonce = "".join(random.choices("abcdefghijklmnopqrstuvwxyz", k=2))
        for run in range(args.runs):
            for index, scenario in enumerate(chosen):
                token = f"{nonce}{run % 10}s{index % 100:02d}"  # the width of INITIAL_TICK's prefix
                result = run_one(scenario, args, kubeconfig, writer, token, log)
                result["run"] = run
                all_results.append(result)
                print(
                    f"run {run + 1}/{args.runs} {scenario.name}: sync {result['sync_s']:.2f} s, "
                    f"RSS {result['rss_mb']:.1f} MB, {result.get('events_per_s', 0):,.0f} ev/s",
                    file=sys.stderr,
                    flush=True,
                )
                time.sleep(args.settle)
        writer.close()

    table = {s.name: medians([r for r in all_results if r["scenario"] == s.name]) for s in chosen}
    base = "informerd" if "informerd" in table else chosen[0].name
    note["loadavg_end"] = os.getloadavg()
    print(
        f"\nn={args.n} pods ({size:,} B JSON, {size_stripped:,} B without managedFields), runs={args.runs}, "
        f"updates={args.updates}, python {note['python']}, {note['cpus']} CPUs, load {note['loadavg'][0]:.1f}"
        f"->{note['loadavg_end'][0]:.1f}; medians; x = ratio to {base}"
    )
    print(render(table, base))
    for s in chosen:
        print(f"  {s.name:<21} {s.description}{detail(s, [r for r in all_results if r['scenario'] == s.name])}")
    out = RESULTS_DIR / f"informer_sync-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "args": {
                    k: v
                    for k, v in vars(args).items()
                    if k not in ("child", "token", "streaming", "keep_managed_fields")
                },
                "machine": note,
                "pod_bytes": size,
                "pod_bytes_stripped": size_stripped,
                "created": created,
                "create_seconds": seconds,
                "medians": table,
                "results": all_results,
            },
            indent=2,
        )
    )
    print(f"raw results: {out}")


if __name__ == "__main__":
    main()
