"""The peers benchmark driver: every peer on one control plane, the same pods, interleaved runs.

For each scale point N (1k and 10k; 50k with ``--full``) it grows the cluster's pods to N, then for
each of ``--runs`` rounds starts every scenario's child in turn (``bench/peers/scenarios.py``),
reads its JSON lines (``bench/peers/child.py``), and while it watches patches min(N, ``--updates``)
pods at once with ``--writers`` threads. Then the client-go and informerd work queues are timed,
interleaved too. Medians per (N, scenario), ratios to each scenario's informerd ``base``, growth
per 10x of N, and everything else land in ``results.json`` and ``RESULTS.md``
(``bench/peers/report.py``) in ``--out`` (default ``bench/``).

``--baseline REV`` adds, for each informerd scenario, the same child run from the source tree of
git revision REV (``git archive`` into a temporary directory; REV must have ``bench/peers``),
named ``<scenario>@<REV>``, interleaved with the rest: an optimisation's before -> after in one run.

Usage: .venv/bin/python -m bench.peers [--full] [-n 1000,10000] [--runs 3] [--updates 3000]
         [--scenarios a,b,...] [--baseline REV] [--kubeconfig PATH] [--out DIR] [--note TEXT]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import queue
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

from bench.peers import gobuild, objects, report
from bench.peers.scenarios import DEFAULT_SCENARIOS, SCENARIOS, Scenario

REPO = Path(__file__).resolve().parents[2]
BENCH_DIR = REPO / "bench"


class PeerFailed(RuntimeError):
    """A child did not deliver a protocol line in time or exited badly (see the log)."""


SERVER_PIDS: list[int] = []
"""etcd's and kube-apiserver's pids when the driver started them (their CPU is sampled per sync)."""


@contextmanager
def cluster(kubeconfig: str | None) -> Iterator[str]:
    if kubeconfig:
        yield kubeconfig
        return
    from informers.testing import ControlPlane

    started = time.perf_counter()
    with ControlPlane() as plane:
        log(f"control plane up in {time.perf_counter() - started:.1f} s")
        SERVER_PIDS[:] = [
            p for p in (plane.etcd.pid if plane.etcd else None, plane.apiserver.pid if plane.apiserver else None) if p
        ]
        try:
            yield str(plane.admin_kubeconfig)
        finally:
            SERVER_PIDS.clear()


def server_cpu_s() -> float | None:
    """CPU-seconds etcd and kube-apiserver have used so far (None: a cluster the driver did not start)."""
    if not SERVER_PIDS:
        return None
    ticks = 0
    for pid in SERVER_PIDS:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def child_argv(
    s: Scenario, args: argparse.Namespace, kubeconfig: str, expect: int, updates: int, token: str
) -> list[str]:
    if s.go == "clientgo":
        common = ["-kubeconfig", kubeconfig, "-qps", str(args.qps), "-burst", str(args.burst)]
        return [str(gobuild.binary("clientgo")), *common, "-updates", str(updates), "-token", token,
                "-timeout", f"{args.timeout}s", *s.args]  # fmt: skip
    if s.go == "controllerruntime":
        return [str(gobuild.binary("controllerruntime")), "controller", "-kubeconfig", kubeconfig,
                "-qps", str(args.qps), "-burst", str(args.burst), "-workers", str(s.workers),
                "-expect", str(expect), "-updates", str(updates), "-token", token,
                "-timeout", f"{args.timeout}s", *s.args]  # fmt: skip
    return [sys.executable, "-m", f"bench.peers.{s.module}", "--kubeconfig", kubeconfig,
            "--qps", str(args.qps), "--burst", str(args.burst), "--workers", str(max(1, s.workers)),
            "--expect", str(expect), "--updates", str(updates), "--token", token,
            "--timeout", str(args.timeout), *s.args]  # fmt: skip


class Child:
    """One running peer: its JSON lines arrive through a reader thread so every wait can time out."""

    def __init__(
        self, argv: list[str], env: dict[str, str], log_file: IO[bytes], name: str, timeout: float, cwd: str = ""
    ) -> None:
        self.name, self.timeout, self.log_name = name, timeout, log_file.name
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=log_file, env={**os.environ, **env}, cwd=cwd or REPO, text=True
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def expect(self, phase: str) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=self.timeout + 60)
        except queue.Empty:
            self.kill()
            raise PeerFailed(f"{self.name}: no {phase!r} line in time (log: {self.log_name})") from None
        if line is None:
            code = self.proc.wait()
            raise PeerFailed(f"{self.name}: exited {code} before its {phase!r} line (log: {self.log_name})")
        data: dict[str, Any] = json.loads(line)
        if data.get("phase") != phase:
            self.kill()
            raise PeerFailed(f"{self.name}: expected a {phase!r} line, got {line[:200]!r}")
        return data

    def finish(self) -> None:
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


MEDIA_TYPES = {"json": "application/json", "protobuf": "application/vnd.kubernetes.protobuf"}


def check_wire(s: Scenario, synced: dict[str, Any]) -> None:
    """A Go peer's synced line names the wire format it asked for and the media types the server's
    pod responses carried: both must be the scenario's ``wire``, or its label would be a lie."""
    if not s.go:
        return
    asked, seen = synced.get("wire"), synced.get("content_types") or []
    wrong = [t for t in seen if t.split(";")[0].strip() != MEDIA_TYPES[s.wire]]
    if asked != s.wire or not seen or wrong:
        raise PeerFailed(f"{s.name}: expected wire {s.wire!r}, the peer asked for {asked!r} and got {seen}")


def run_scenario(
    s: Scenario,
    args: argparse.Namespace,
    kubeconfig: str,
    writer: Any,
    n: int,
    expect: int,
    token: str,
    log_file: IO[bytes],
) -> dict[str, Any]:
    """One child of ``s`` at scale ``n`` (``expect`` pods in the cluster): its lines, then the
    figures derived from them."""
    updates = min(n, args.updates)
    log_file.write(f"\n=== {s.name} n={n} token={token}\n".encode())
    log_file.flush()
    argv = child_argv(s, args, kubeconfig, expect, updates, token)
    server_before = server_cpu_s()
    child = Child(argv, s.env, log_file, s.name, args.timeout, s.source)
    try:
        synced = child.expect("synced")
        server_after = server_cpu_s()
        if server_before is not None and server_after is not None:
            synced["server_cpu_sync_s"] = server_after - server_before
        check_wire(s, synced)
        initial = child.expect("initial") if s.kind == "controller" else None
        first_sent, last_acked = objects.patch_pods(writer, token, updates, args.writers) if updates else (0.0, 0.0)
        events = child.expect("events")
    except BaseException:
        if child.proc.poll() is None:
            child.kill()
        raise
    child.finish()
    return figures(s, n, updates, synced, initial, events, first_sent, last_acked)


def figures(
    s: Scenario,
    n: int,
    updates: int,
    synced: dict[str, Any],
    initial: dict[str, Any] | None,
    events: dict[str, Any],
    first_sent: float,
    last_acked: float,
) -> dict[str, Any]:
    held_kb = synced["rss_kb"] - synced["rss_base_kb"]
    peaks = [d["peak_rss_kb"] for d in (synced, initial or {}, events) if "peak_rss_kb" in d]
    f: dict[str, Any] = {
        "scenario": s.name,
        "n": n,
        "objects": synced["objects"],
        "sync_s": synced["sync_s"],
        "cpu_sync_s": synced.get("cpu_sync_s", float("nan")),
        "server_cpu_sync_s": synced.get("server_cpu_sync_s", float("nan")),
        "rss_mb": held_kb / 1024,
        "bytes_per_object": held_kb * 1024 / max(1, synced["objects"] or n),
        "peak_mb": (max(peaks) - synced["rss_base_kb"]) / 1024,
        "updates": updates,
        "write_per_s": updates / max(1e-9, last_acked - first_sent) if updates else float("nan"),
    }
    known = {"phase", "sync_s", "cpu_sync_s", "server_cpu_sync_s", "objects", "rss_base_kb", "rss_kb", "peak_rss_kb"}
    f["detail"] = {k: v for k, v in synced.items() if k not in known}  # peer-specific facts (list pages, Go heap)
    seen = events["events"]
    span = events["last_event_t"] - events["first_event_t"]
    f["events_seen"] = seen
    f["timed_out"] = bool(events.get("timed_out")) or bool(initial and initial.get("timed_out"))
    f["cpu_us_per_event"] = events["cpu_s"] / seen * 1e6 if seen else float("nan")
    latencies = events.get("latencies_ms") or []
    if s.kind == "informer" or s.kind == "operator":
        f["events_per_s"] = seen / span if seen > 1 and span > 0 else float("nan")
        f["handler_p50_ms"] = percentile(latencies, 0.50)
        f["handler_p99_ms"] = percentile(latencies, 0.99)
    if s.kind == "controller":
        f["reconcile_p50_ms"] = percentile(latencies, 0.50)
        f["reconcile_p99_ms"] = percentile(latencies, 0.99)
        f["all_reconciled_s"] = events["last_event_t"] - first_sent if seen else float("nan")
        f["reconciles_per_s"] = seen / span if seen > 1 and span > 0 else float("nan")
        assert initial is not None
        f["initial_reconciled_s"] = initial["seconds"]
        pass_s = initial["seconds"] - synced["sync_s"]
        f["initial_reconciles_per_s"] = initial["reconciled"] / pass_s if pass_s > 0 else float("nan")
        f["initial_cpu_s"] = initial["cpu_s"]
    if s.kind == "operator":
        reconcile = events.get("reconcile_latencies_ms") or []
        f["reconcile_p50_ms"] = percentile(reconcile, 0.50)
        f["reconcile_p99_ms"] = percentile(reconcile, 0.99)
        last = events.get("last_reconcile_t") or 0.0
        f["all_reconciled_s"] = last - first_sent if last else float("nan")
    return f


def run_workqueues(args: argparse.Namespace, log_file: IO[bytes]) -> list[dict[str, Any]]:
    """client-go's and informerd's work queues, alternated ``--runs`` times."""
    results: list[dict[str, Any]] = []
    items = str(args.queue_items)
    peers = {
        "client-go workqueue": [
            str(gobuild.binary("controllerruntime")),
            "workqueue",
            "-items",
            items,
            "-workers",
            "4",
        ],
        "informerd WorkQueue": [sys.executable, "-m", "bench.peers.workqueue_peer", "--items", items, "--workers", "4"],
    }
    for run in range(args.runs):
        for name, argv in peers.items():
            child = Child(argv, {}, log_file, name, args.timeout)
            line = child.expect("workqueue")
            child.finish()
            results.append({"peer": name, "run": run, **line})
            log(f"run {run + 1}/{args.runs} {name}: {line['one_thread']:,.0f} cycles/s on one thread")
    return results


def medians(rows: list[dict[str, Any]]) -> dict[str, float]:
    keys = [k for k, v in rows[0].items() if isinstance(v, float | int) and not isinstance(v, bool)]
    out: dict[str, float] = {}
    for k in keys:
        values = [r[k] for r in rows if isinstance(r.get(k), float | int) and r[k] == r[k]]  # drop NaN
        out[k] = statistics.median(values) if values else float("nan")
    return out


def machine_facts(writer: Any) -> dict[str, Any]:
    import platform

    import orjson

    facts: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "orjson": orjson.__version__,
        "go": gobuild.go_version(),
        "client_go": gobuild.module_version("clientgo", "k8s.io/client-go"),
        "controller_runtime": gobuild.module_version("controllerruntime", "sigs.k8s.io/controller-runtime"),
    }
    with open("/proc/meminfo") as f:
        facts["mem_total_kb"] = int(f.readline().split()[1])
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("informerd", "kubernetes", "kopf", "anyio"):
        try:
            facts[dist] = version(dist)
        except PackageNotFoundError:  # the scenario that needs it fails and says so
            facts[dist] = None
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
        facts["informerd_commit"] = commit.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        facts["informerd_commit"] = None
    facts["kube_apiserver"] = writer.get_json("/version").get("gitVersion")
    return facts


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", default="1000,10000", help="comma-separated scale points (default 1000,10000)")
    p.add_argument("--full", action="store_true", help="add the 50000 scale point")
    p.add_argument("--runs", type=int, default=3, help="rounds (each runs every scenario once; default 3)")
    p.add_argument("--updates", type=int, default=3000, help="pods patched at once per child (capped at N)")
    p.add_argument("--scenarios", default=",".join(DEFAULT_SCENARIOS), help=f"from: {', '.join(SCENARIOS)}")
    p.add_argument("--writers", type=int, default=8, help="threads writing pods (default 8)")
    p.add_argument("--kubeconfig", help="a running cluster without controllers (default: start one)")
    p.add_argument("--qps", type=float, default=5.0, help="client QPS of every peer (default 5)")
    p.add_argument("--burst", type=int, default=10, help="client burst of every peer (default 10)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds a child may take per phase")
    p.add_argument("--settle", type=float, default=1.0, help="pause between children, seconds")
    p.add_argument("--queue-items", type=int, default=100_000, help="items per work queue run")
    p.add_argument("--out", default=str(BENCH_DIR), help="where results.json and RESULTS.md go")
    p.add_argument("--note", default="", help="a remark printed atop RESULTS.md (e.g. 'noisy machine')")
    p.add_argument("--baseline", help="also run the informerd scenarios from this git revision (before -> after)")
    p.add_argument(
        "--baseline-scenarios",
        default="",
        help="comma-separated: only these informerd scenarios get a --baseline twin (default: all)",
    )
    args = p.parse_args(argv)
    args.sizes = sorted({int(x) for x in args.n.split(",") if x} | ({50_000} if args.full else set()))
    args.chosen = [x for x in args.scenarios.split(",") if x]
    unknown = [x for x in args.chosen if x not in SCENARIOS]
    if unknown:
        p.error(f"unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)}")
    return args


def baseline_scenarios(
    chosen: list[Scenario], rev: str, stack: ExitStack, only: frozenset[str] = frozenset()
) -> list[Scenario]:
    """``chosen`` with each informerd scenario (of ``only``, if given) followed by its twin run
    from revision ``rev``."""
    tree = stack.enter_context(tempfile.TemporaryDirectory(prefix="informerd-baseline-"))
    archive = subprocess.run(["git", "archive", rev], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
    if not (Path(tree) / "bench" / "peers").is_dir():
        raise SystemExit(f"--baseline {rev}: that revision has no bench/peers")
    out: list[Scenario] = []
    for s in chosen:
        out.append(s)
        if s.module.startswith("informerd") and (not only or s.name in only):
            twin = dataclasses.replace(s, name=f"{s.name}@{rev}", source=tree, description=f"{s.description}, at {rev}")
            out.append(twin)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    command = shlex.join([".venv/bin/python", "-m", "bench.peers", *(sys.argv[1:] if argv is None else argv)])
    stack = ExitStack()
    chosen = [SCENARIOS[name] for name in args.chosen]
    if args.baseline:
        only = frozenset(x for x in args.baseline_scenarios.split(",") if x)
        chosen = baseline_scenarios(chosen, args.baseline, stack, only)
    for go in sorted({s.go for s in chosen if s.go} | {"controllerruntime"}):
        log(f"Go peer {go}: {gobuild.binary(go)}")  # built before any clock starts
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (BENCH_DIR / "results").mkdir(exist_ok=True)
    log_path = BENCH_DIR / "results" / f"peers-{time.strftime('%Y%m%d-%H%M%S')}.log"
    from informers.client import ApiClient
    from informers.config import load_config

    rows: list[dict[str, Any]] = []
    data_set: dict[str, Any] = {}
    with cluster(args.kubeconfig) as kubeconfig, log_path.open("wb") as log_file:
        writer = ApiClient(load_config(kubeconfig, qps=-1, pool_maxsize=args.writers * 2))
        facts = machine_facts(writer)
        for n in args.sizes:
            created, seconds = objects.ensure_pods(writer, n, args.writers)
            in_cluster = objects.count_pods(writer)
            log(f"n={n}: {created} pods created in {seconds:.1f} s; {in_cluster} pods in the cluster")
            data_set[str(n)] = {"created": created, "create_s": seconds, "pods_in_cluster": in_cluster}
            for run in range(args.runs):
                for index, s in enumerate(chosen):
                    token = f"n{len(str(n))}r{run % 100:02d}s{index:02d}"
                    row = run_scenario(s, args, kubeconfig, writer, n, in_cluster, token, log_file)
                    row["run"] = run
                    rows.append(row)
                    log(
                        f"n={n} run {run + 1}/{args.runs} {s.name}: sync {row['sync_s']:.2f} s "
                        f"(CPU {row['cpu_sync_s']:.2f} s), {row['bytes_per_object']:,.0f} B/object, "
                        f"{row['events_seen']}/{row['updates']} updates seen"
                    )
                    time.sleep(args.settle)
        sample = writer.get_json(objects.pod_path(0))
        data_set["pod_bytes"] = len(json.dumps(sample, separators=(",", ":")))
        sample["metadata"].pop("managedFields", None)
        data_set["pod_bytes_stripped"] = len(json.dumps(sample, separators=(",", ":")))
        queues = run_workqueues(args, log_file)
        writer.close()
    stack.close()
    facts["loadavg_end"] = os.getloadavg()
    results = report.build(args, command, facts, data_set, chosen, rows, queues, medians)
    report.write(results, out)
    log(f"wrote {out / 'results.json'} and {out / 'RESULTS.md'} (child logs: {log_path})")
    return results
