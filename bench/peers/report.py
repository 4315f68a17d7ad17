"""Turns the driver's rows into ``results.json`` (every figure, run and fact) and ``RESULTS.md``
(the tables and how to read them, then ``optimisations.md``: what each optimisation bought, before
-> after, kept by hand since a run only measures the tree it runs). Pure: no I/O but reading that
file and the two files ``write`` makes.

Ratios are ``scenario median / base median`` from the same invocation: the informer figures
against ``informerd`` (controllers against their informerd controller with the same workers),
the controller figures against the scenario's ``base``. Growth is the median at 10N over the
median at N, for every pair of scale points ten times apart (9-11 means linear).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.peers.scenarios import SCENARIOS, Scenario

# (key, header, format); the order of the tables' columns.
INFORMER_COLUMNS = (
    ("sync_s", "sync s", "{:.2f}"),
    ("cpu_sync_s", "CPU sync s", "{:.2f}"),
    ("server_cpu_sync_s", "server CPU s", "{:.2f}"),
    ("bytes_per_object", "B/obj", "{:,.0f}"),
    ("peak_mb", "peak MB", "{:.1f}"),
    ("events_per_s", "ev/s", "{:,.0f}"),
    ("write_per_s", "writes/s", "{:,.0f}"),
    ("cpu_us_per_event", "CPU us/ev", "{:,.0f}"),
    ("handler_p50_ms", "p50 ms", "{:.1f}"),
    ("handler_p99_ms", "p99 ms", "{:.1f}"),
)
CONTROLLER_COLUMNS = (
    ("sync_s", "sync s", "{:.2f}"),
    ("initial_reconciled_s", "all N s", "{:.2f}"),
    ("initial_reconciles_per_s", "N rec/s", "{:,.0f}"),
    ("all_reconciled_s", "burst s", "{:.2f}"),
    ("reconciles_per_s", "rec/s", "{:,.0f}"),
    ("write_per_s", "writes/s", "{:,.0f}"),
    ("cpu_us_per_event", "CPU us/rec", "{:,.0f}"),
    ("reconcile_p50_ms", "p50 ms", "{:.1f}"),
    ("reconcile_p99_ms", "p99 ms", "{:.1f}"),
)
INFORMER_RATIOS = ("sync_s", "cpu_sync_s", "bytes_per_object", "peak_mb", "cpu_us_per_event", "handler_p99_ms")
CONTROLLER_RATIOS = ("initial_reconciles_per_s", "reconciles_per_s", "cpu_us_per_event", "reconcile_p99_ms")
GROWTH_KEYS = ("sync_s", "cpu_sync_s", "rss_mb", "peak_mb", "initial_reconciled_s")
QUEUE_KEYS = (("one_thread", "1 thread"), ("workers", "4 workers (threads / goroutines)"), ("tasks", "4 anyio tasks"))


def _num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)


def _ratio(a: Any, b: Any) -> float | None:
    return a / b if _num(a) and _num(b) and b else None


def wire_of(results: dict[str, Any], name: str) -> str:
    """The wire format of scenario ``name``: as the run recorded it, else as scenarios.py declares."""
    recorded = results.get("scenarios", {}).get(name, {}).get("wire")
    return str(recorded or (SCENARIOS[name].wire if name in SCENARIOS else "?"))


def informer_base(s: Scenario) -> str:
    return s.base if s.kind == "controller" else "informerd"


def build(
    args: argparse.Namespace,
    command: str,
    facts: dict[str, Any],
    data_set: dict[str, Any],
    chosen: Sequence[Scenario],
    rows: list[dict[str, Any]],
    queues: list[dict[str, Any]],
    medians: Callable[[list[dict[str, Any]]], dict[str, float]],
) -> dict[str, Any]:
    table: dict[str, dict[str, dict[str, float]]] = {}
    for n in args.sizes:
        table[str(n)] = {
            s.name: medians(mine)
            for s in chosen
            if (mine := [r for r in rows if r["n"] == n and r["scenario"] == s.name])
        }
    ratios: dict[str, dict[str, dict[str, float | None]]] = {}
    for n, row in table.items():
        ratios[n] = {}
        for s in chosen:
            mine = row.get(s.name, {})
            r: dict[str, float | None] = {}
            for key in INFORMER_RATIOS:
                r[key] = _ratio(mine.get(key), row.get(informer_base(s), {}).get(key))
            if s.kind != "informer":
                for key in CONTROLLER_RATIOS:
                    r[key] = _ratio(mine.get(key), row.get(s.base, {}).get(key))
            ratios[n][s.name] = {k: v for k, v in r.items() if v is not None}
    growth: dict[str, dict[str, dict[str, float | None]]] = {}
    for s in chosen:
        growth[s.name] = {}
        for small in args.sizes:
            big = small * 10
            if big not in args.sizes:
                continue
            a, b = table[str(small)].get(s.name, {}), table[str(big)].get(s.name, {})
            growth[s.name][f"{small}->{big}"] = {k: _ratio(b.get(k), a.get(k)) for k in GROWTH_KEYS if k in a}
    queue_medians: dict[str, dict[str, float]] = {}
    for peer in dict.fromkeys(q["peer"] for q in queues):
        mine = [q for q in queues if q["peer"] == peer]
        queue_medians[peer] = medians(mine)
    results: dict[str, Any] = {
        "command": command,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "note": args.note,
        "args": {k: v for k, v in vars(args).items() if k not in ("chosen",)},
        "machine": facts,
        "data_set": data_set,
        "scenarios": {
            s.name: {"kind": s.kind, "wire": s.wire, "description": s.description, "base": s.base} for s in chosen
        },
        "medians": table,
        "ratios": ratios,
        "growth_per_10x": growth,
        "workqueue": queue_medians,
        "targets": [],  # filled below from this very record
        "runs": rows,
        "workqueue_runs": queues,
    }
    results["targets"] = [{"target": t, "measured": v, "met": ok} for t, v, ok in targets(results)]
    return results


def targets(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Issue 11's targets at the largest N of the run: (target, measured, "yes"/"no"/"-")."""
    if not results["medians"]:
        return []
    n = max(results["medians"], key=int)
    row = results["medians"][n]

    def get(name: str, key: str) -> Any:
        return row.get(name, {}).get(key)

    out: list[tuple[str, str, str]] = []

    def check(target: str, value: float | None, ok: Callable[[float], bool], fmt: str = "{:.2f}x") -> None:
        if value is None or not _num(value):
            out.append((target, "not measured", "-"))
        else:
            out.append((target, fmt.format(value), "yes" if ok(value) else "no"))

    me = "informerd"
    # client-go and controller-runtime talk protobuf for pods by default but JSON for custom
    # resources (no protobuf for CRDs): each of their targets is checked against both peers, the
    # row naming the peer and its wire format.
    client_go = [(name, f"[{name}, {wire_of(results, name)}]") for name in ("client-go", "client-go-json")]
    for go, which in client_go:
        check(
            f"sync time <= 1.0x client-go's {which}", _ratio(get(me, "sync_s"), get(go, "sync_s")), lambda v: v <= 1.0
        )
    for go, which in client_go:
        check(
            f"CPU-seconds to sync <= client-go's {which}",
            _ratio(get(me, "cpu_sync_s"), get(go, "cpu_sync_s")),
            lambda v: v <= 1.0,
        )
    for go, which in client_go:
        check(
            f"CPU per update event <= 1.0x client-go's {which}",
            _ratio(get(me, "cpu_us_per_event"), get(go, "cpu_us_per_event")),
            lambda v: v <= 1.0,
        )
    check(
        "LIST path retained RSS <= 1.5x the streaming path's",
        _ratio(get("informerd-list", "rss_mb"), get(me, "rss_mb")),
        lambda v: v <= 1.5,
    )
    for go, which in client_go:
        check(
            f"memory per cached pod <= 0.4x client-go's {which}",
            _ratio(get(me, "bytes_per_object"), get(go, "bytes_per_object")),
            lambda v: v <= 0.4,
        )
    for go, which in client_go:
        p99, go_p99 = get(me, "handler_p99_ms"), get(go, "handler_p99_ms")
        check(
            f"p99 write -> handler within 50 ms of client-go's {which}",
            p99 - go_p99 if _num(p99) and _num(go_p99) else None,
            lambda v: v <= 50,
            "{:+.0f} ms",
        )
    for w in (1, 4):
        for go in (f"controller-runtime-w{w}", f"controller-runtime-json-w{w}"):
            check(
                f"reconciles/s (initial pass, {w} worker{'s' if w > 1 else ''}) >= controller-runtime's "
                f"[{go}, {wire_of(results, go)}]",
                _ratio(
                    get(f"informerd-controller-w{w}", "initial_reconciles_per_s"),
                    get(go, "initial_reconciles_per_s"),
                ),
                lambda v: v >= 1.0,
            )
    for peer in ("kopf", "kubernetes-informer"):
        check(f">= 10x {peer}'s sync rate", _ratio(get(peer, "sync_s"), get(me, "sync_s")), lambda v: v >= 10)
        check(
            f">= 10x {peer}'s event rate (CPU per event)",
            _ratio(get(peer, "cpu_us_per_event"), get(me, "cpu_us_per_event")),
            lambda v: v >= 10,
        )
        check(
            f"<= 1/3 of {peer}'s memory per object",
            _ratio(get(me, "bytes_per_object"), get(peer, "bytes_per_object")),
            lambda v: v <= 1 / 3,
        )
    for pair, g in results["growth_per_10x"].get(me, {}).items():
        for key in ("sync_s", "cpu_sync_s", "rss_mb"):
            check(f"linear cost {pair}: {key} grows 9-11x", g.get(key), lambda v: 9 <= v <= 11, "{:.1f}x")
    return [(f"N = {int(n):,}: {t}", v, ok) for t, v, ok in out]


def _cell(value: Any, fmt: str) -> str:
    return fmt.format(value) if _num(value) else "-"


def _table(headers: Sequence[str], lines: list[list[str]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return "\n".join(out)


OPTIMISATIONS = Path(__file__).with_name("optimisations.md")


def render(results: dict[str, Any], history: str = "") -> str:
    m = results["machine"]
    scenarios = results["scenarios"]
    parts = [
        "# informerd against its peers: sync, memory, events, the controller path, scaling",
        "",
        "Generated by `make bench` (`bench/peers/`); every figure, run and fact is in `results.json`.",
        "",
    ]
    if results["note"]:
        parts += [f"**Note:** {results['note']}", ""]
    parts += [
        f"Command: `{results['command']}`  ",
        f"Date: {results['date']}; informerd {m.get('informerd')} at {str(m.get('informerd_commit'))[:12]}; "
        f"Python {m['python']}, orjson {m['orjson']}, anyio {m.get('anyio')}, kubernetes client "
        f"{m.get('kubernetes')}, kopf {m.get('kopf')}; {m['go']}, client-go {m['client_go']}, "
        f"controller-runtime {m['controller_runtime']}; kube-apiserver {m.get('kube_apiserver')}; "
        f"{m['cpus']} CPUs, {m['mem_total_kb'] / 2**20:.0f} GiB, load {m['loadavg_start'][0]:.1f} -> "
        f"{m['loadavg_end'][0]:.1f}.  ",
        f"Data: pods of {results['data_set'].get('pod_bytes', 0):,} B of JSON "
        f"({results['data_set'].get('pod_bytes_stripped', 0):,} B without managedFields) in 5 namespaces; "
        f"runs={results['args']['runs']}, updates per child=min(N, {results['args']['updates']}), "
        f"client QPS {results['args']['qps']} / burst {results['args']['burst']} for every peer. Medians of the runs.",
        "",
        "## Peers",
        "",
        _table(
            ["scenario", "kind", "wire", "what", "ratios against"],
            [[name, s["kind"], s.get("wire", "-"), s["description"], s["base"]] for name, s in scenarios.items()],
        ),
        "",
    ]
    for n, row in results["medians"].items():
        ratios = results["ratios"][n]
        names = [name for name in scenarios if name in row]
        parts += [f"## N = {int(n):,} pods", "", "### Informer path (sync, memory, update events -> handler)", ""]
        headers = ["scenario", *(h for _, h, _ in INFORMER_COLUMNS), "x sync", "x CPU sync", "x B/obj", "x CPU/ev"]
        lines = []
        for name in names:
            r = ratios.get(name, {})
            lines.append(
                [name, *(_cell(row[name].get(k), fmt) for k, _, fmt in INFORMER_COLUMNS)]
                + [_cell(r.get(k), "{:.2f}") for k in ("sync_s", "cpu_sync_s", "bytes_per_object", "cpu_us_per_event")]
            )
        parts += [_table(headers, lines), ""]
        ctl = [name for name in names if scenarios[name]["kind"] != "informer"]
        if ctl:
            parts += ["### Controller path (every pod reconciled after start; patched pods -> reconcile)", ""]
            headers = ["scenario", *(h for _, h, _ in CONTROLLER_COLUMNS), "x N rec/s", "x rec/s", "x CPU/rec"]
            lines = []
            for name in ctl:
                r = ratios.get(name, {})
                keys = ("initial_reconciles_per_s", "reconciles_per_s", "cpu_us_per_event")
                lines.append(
                    [name, *(_cell(row[name].get(k), fmt) for k, _, fmt in CONTROLLER_COLUMNS)]
                    + [_cell(r.get(k), "{:.2f}") for k in keys]
                )
            parts += [_table(headers, lines), ""]
    growth = results["growth_per_10x"]
    if any(growth.values()):
        parts += ["## Scaling: growth per 10x of N (median at 10N / median at N; 9-11 is linear)", ""]
        headers = ["scenario", "N -> 10N", *GROWTH_KEYS]
        lines = []
        for name, pairs in growth.items():
            for pair, g in pairs.items():
                lines.append([name, pair, *(_cell(g.get(k), "{:.1f}") for k in GROWTH_KEYS)])
        parts += [_table(headers, lines), ""]
    q = results["workqueue"]
    if q:
        parts += ["## Work queue: add/get/done cycles/s (no I/O, distinct items)", ""]
        peers = list(q)
        lines = [[label, *(_cell(q[p].get(k), "{:,.0f}") for p in peers)] for k, label in QUEUE_KEYS]
        parts += [_table(["scenario", *peers], lines), ""]
    goals = targets(results)
    if goals:
        parts += ["## Issue 11's targets (informerd against each peer, from the tables above)", ""]
        parts += [_table(["target", "measured", "met"], [list(g) for g in goals]), ""]
    parts += [HOW_TO_READ]
    if history:
        parts += ["", history.strip()]
    return "\n".join(parts) + "\n"


HOW_TO_READ = """## How to read these tables

Each peer runs in its own child process, once per round, rounds interleaved so the machine's noise
hits every peer alike; the control plane (etcd + kube-apiserver) runs on the same cores, so compare
peers within this file (the ratios), not across files. `x` columns: peer median / informerd median
(lower is better for times, CPU, memory; higher for rates).

- **wire**: the format each peer talks for pods. client-go prefers protobuf for built-in types: its
  typed clients were generated with `gentype.PrefersProtobuf`, and `rest.Request.UseProtobufAsDefault`
  applies whenever the config names neither `ContentType` nor `AcceptContentTypes`.
  controller-runtime's cache does the same (`apiutil.RESTClientForGVK` picks protobuf for every type
  in client-go's scheme). CRDs have no protobuf, so operators' own resources always travel as JSON:
  `client-go-json` and `controller-runtime-json-w*` force JSON (managedFields stripped), what the Go
  peers do for custom resources and like for like with informerd, which, like kopf and the official
  client, talks JSON only. The default Go peers' sync and CPU figures are therefore protobuf against
  JSON (decoding protobuf is far cheaper, in the peer and in the apiserver's encoding); every
  client-go and controller-runtime target is checked against both peers, each row naming which. The
  Go peers report the format they asked for and the media types of the server's pod responses; the
  driver fails a peer whose label disagrees with either.
- **sync s**: start -> the peer's own "synced" (informerd `wait_synced` + handler synced; client-go
  `HasSynced` + registration; controller-runtime its pod informer's `HasSynced`, polled every ms as
  for client-go; informerd's Controller `wait_synced`; the official SharedInformer
  its first list applied; kopf, which has no cache, every pod seen by its `on.event` handler).
  **CPU sync s**: the child's process CPU over the same span (what the sync costs on a cluster whose
  apiserver does not share the cores). **server CPU s**: etcd's and kube-apiserver's CPU over the
  child's start -> synced (only when the driver started the control plane): what serving that
  peer's list cost the server, on the same 2 cores here. Encoding pods as JSON costs the apiserver
  ~3x what protobuf does, and that, not the client, bounds a JSON peer's sync time on this machine.
- **B/obj**: VmRSS after sync and a GC minus VmRSS before start, per cached pod. **peak MB**: VmHWM
  minus the same baseline, over the whole child (sync and updates).
- **Update events**: the driver patches min(N, updates) pods at once (8 threads; each patch sets a
  label and a write-time annotation). **ev/s** and **rec/s** are bounded by the write rate
  (**writes/s**, ~250/s on this machine) when the peer keeps up; **CPU us/ev** (child CPU from sync
  to the last event, per event) says what each would do with faster writes. **p50/p99 ms**: write
  time (annotation, set just before the PATCH) -> handler call, or -> reconcile start; one clock.
- **Controller path**: **all N s** = start -> every pod reconciled once (the initial pass);
  **N rec/s** = N over (all N s - sync s), the pipeline's rate with no writer in the way;
  **burst s** = first patch sent -> last patched pod reconciled. controller-runtime starts its
  workers once its own sync check passes, which polls every 100 ms: at small N that poll, not the
  pipeline, sets **N rec/s**. kopf has no initial pass
  (`on.update` fires on changes only) and no worker setting.
- **Scaling**: growth of a figure when N grows 10x; 9-11 is linear, below 9 means fixed costs
  dominate at the small N.
- **Work queue**: client-go's `workqueue.Typed` in Go against informerd's `WorkQueue`, one thread
  looping add -> get -> done, and 4 consumers draining what one producer adds.
"""


def write(results: dict[str, Any], out: Path) -> None:
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    history = OPTIMISATIONS.read_text() if OPTIMISATIONS.is_file() else ""
    (out / "RESULTS.md").write_text(render(results, history))
