"""The peers benchmark's arithmetic (``bench/peers``): figures from a child's lines, medians, ratios
against each scenario's base, growth per 10x, and the Markdown tables. Pure logic, no processes."""

from __future__ import annotations

import argparse
import math
import time

import pytest

from bench.peers import driver, report
from bench.peers.scenarios import SCENARIOS


def test_percentile_is_nearest_rank_and_nan_when_empty() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert driver.percentile(values, 0.5) == 51.0  # index round(0.5 * 99) = 50
    assert driver.percentile(values, 0.99) == 99.0  # index round(0.99 * 99) = 98
    assert driver.percentile([7.0], 0.99) == 7.0
    assert math.isnan(driver.percentile([], 0.5))


def synced(objects: int = 1000) -> dict[str, float]:
    return {"sync_s": 2.0, "cpu_sync_s": 1.5, "objects": objects, "rss_base_kb": 10_000, "rss_kb": 14_000,
            "peak_rss_kb": 20_000}  # fmt: skip


def test_informer_figures_come_from_the_child_lines() -> None:
    events = {"events": 100, "first_event_t": 1000.0, "last_event_t": 1002.0, "cpu_s": 0.05,
              "latencies_ms": [float(v) for v in range(1, 101)], "timed_out": False, "peak_rss_kb": 24_000}  # fmt: skip
    f = driver.figures(SCENARIOS["informerd"], 1000, 100, synced(), None, events, 999.0, 1001.0)
    assert f["rss_mb"] == pytest.approx(4000 / 1024)
    assert f["bytes_per_object"] == pytest.approx(4000 * 1024 / 1000)
    assert f["peak_mb"] == pytest.approx((24_000 - 10_000) / 1024)  # the highest VmHWM of any line
    assert f["write_per_s"] == pytest.approx(50.0)
    assert f["events_per_s"] == pytest.approx(50.0)
    assert f["cpu_us_per_event"] == pytest.approx(500.0)
    assert f["handler_p50_ms"] == driver.percentile(events["latencies_ms"], 0.5)
    assert "reconcile_p50_ms" not in f and f["timed_out"] is False


def test_controller_figures_include_the_initial_pass_and_the_burst() -> None:
    initial = {"reconciled": 1000, "reconciles": 1000, "seconds": 4.0, "cpu_s": 3.0, "timed_out": False}
    events = {"events": 10, "first_event_t": 1000.5, "last_event_t": 1001.0, "cpu_s": 0.01,
              "latencies_ms": [5.0] * 10, "timed_out": False}  # fmt: skip
    f = driver.figures(SCENARIOS["controller-runtime-w4"], 1000, 10, synced(), initial, events, 1000.0, 1000.4)
    assert f["initial_reconciles_per_s"] == pytest.approx(1000 / (4.0 - 2.0))
    assert f["all_reconciled_s"] == pytest.approx(1.0)
    assert f["reconciles_per_s"] == pytest.approx(10 / 0.5)
    assert f["reconcile_p99_ms"] == 5.0
    assert "handler_p50_ms" not in f


def test_a_peer_that_saw_nothing_reports_nan_not_zero() -> None:
    events = {"events": 0, "first_event_t": 0.0, "last_event_t": 0.0, "cpu_s": 0.2, "latencies_ms": [],
              "timed_out": True}  # fmt: skip
    f = driver.figures(SCENARIOS["client-go"], 1000, 100, synced(), None, events, 1.0, 2.0)
    assert math.isnan(f["cpu_us_per_event"]) and math.isnan(f["events_per_s"]) and f["timed_out"]


def test_medians_skip_nan_and_flags() -> None:
    rows = [{"a": 1.0, "b": float("nan"), "ok": True}, {"a": 3.0, "b": 2.0, "ok": False}, {"a": 2.0, "b": 4.0}]
    assert driver.medians(rows) == {"a": 2.0, "b": 3.0}


def test_ratios_are_taken_against_each_scenarios_base_and_growth_per_10x() -> None:
    chosen = [SCENARIOS[n] for n in ("informerd", "client-go", "informerd-controller-w1", "controller-runtime-w1")]
    rows = []
    for n, scale in ((1000, 1.0), (10_000, 10.0)):
        for name, sync_s, rate in (("informerd", 2.0, 0), ("client-go", 1.0, 0),
                                   ("informerd-controller-w1", 4.0, 500.0), ("controller-runtime-w1", 3.0, 1000.0)):  # fmt: skip
            row = {"scenario": name, "n": n, "sync_s": sync_s * scale, "rss_mb": 5.0 * scale}
            if rate:
                row["initial_reconciles_per_s"] = rate
            rows.append(row)
    args = argparse.Namespace(sizes=[1000, 10_000], note="", runs=1, updates=10, qps=5.0, burst=10, chosen=[])
    results = report.build(args, "cmd", {}, {}, chosen, rows, [], driver.medians)
    r = results["ratios"]["1000"]
    assert r["informerd"]["sync_s"] == 1.0
    assert r["client-go"]["sync_s"] == 0.5
    assert r["controller-runtime-w1"]["sync_s"] == 0.75  # controllers against their informerd controller
    assert r["controller-runtime-w1"]["initial_reconciles_per_s"] == 2.0
    assert "initial_reconciles_per_s" not in r["client-go"]
    growth = results["growth_per_10x"]["client-go"]["1000->10000"]
    assert growth["sync_s"] == pytest.approx(10.0) and growth["rss_mb"] == pytest.approx(10.0)


def test_render_has_one_section_per_scale_point_and_a_row_per_peer() -> None:
    chosen = [SCENARIOS["informerd"], SCENARIOS["kopf"]]
    rows = [{"scenario": s.name, "n": 100, "sync_s": 0.1, "reconcile_p99_ms": 9.0} for s in chosen]
    args = argparse.Namespace(sizes=[100], note="noisy", runs=1, updates=10, qps=5.0, burst=10, chosen=[])
    facts = {"python": "3", "orjson": "x", "go": "go", "client_go": "v", "controller_runtime": "v", "cpus": 2,
             "mem_total_kb": 2**21, "loadavg_start": (1.0, 1.0, 1.0), "loadavg_end": (2.0, 1.0, 1.0)}  # fmt: skip
    queues = [{"peer": "client-go workqueue", "one_thread": 5.0, "workers": 4.0}]
    text = report.render(report.build(args, "the command", facts, {}, chosen, rows, queues, driver.medians))
    assert "## N = 100 pods" in text and "**Note:** noisy" in text and "`the command`" in text
    rows_of = [line for line in text.splitlines() if line.startswith("| informerd |")]
    assert len(rows_of) == 2  # the peers table and the informer table
    assert "| scenario | kind | wire | what | ratios against |" in text
    assert rows_of[0].startswith("| informerd | informer | json |")
    assert "| kopf |" in text and "Controller path" in text  # kopf is in both tables
    assert "| 1 thread | 5 |" in text


def test_targets_compare_informerd_with_each_peer_at_the_largest_n() -> None:
    chosen = [SCENARIOS[n] for n in ("informerd", "client-go", "informerd-list")]
    rows = [
        {"scenario": "informerd", "n": 100, "sync_s": 9.0, "bytes_per_object": 1.0, "rss_mb": 50.0},
        {"scenario": "informerd", "n": 1000, "sync_s": 2.0, "bytes_per_object": 4.0, "rss_mb": 10.0},
        {"scenario": "client-go", "n": 1000, "sync_s": 1.0, "bytes_per_object": 20.0, "rss_mb": 99.0},
        {"scenario": "informerd-list", "n": 1000, "sync_s": 1.0, "bytes_per_object": 9.0, "rss_mb": 12.0},
    ]
    args = argparse.Namespace(sizes=[100, 1000], note="", runs=1, updates=10, qps=5.0, burst=10, chosen=[])
    results = report.build(args, "cmd", {}, {}, chosen, rows, [], driver.medians)
    by_target = {t["target"]: t for t in results["targets"]}
    assert by_target["N = 1,000: sync time <= 1.0x client-go's [client-go, protobuf]"] == {
        "target": "N = 1,000: sync time <= 1.0x client-go's [client-go, protobuf]",
        "measured": "2.00x",
        "met": "no",
    }
    assert by_target["N = 1,000: memory per cached pod <= 0.4x client-go's [client-go, protobuf]"]["met"] == "yes"
    assert by_target["N = 1,000: LIST path retained RSS <= 1.5x the streaming path's"]["measured"] == "1.20x"
    assert by_target["N = 1,000: CPU per update event <= 1.0x client-go's [client-go, protobuf]"]["met"] == "-"
    # the JSON peer was not in this run: its rows say so rather than vanish
    assert by_target["N = 1,000: sync time <= 1.0x client-go's [client-go-json, json]"]["measured"] == "not measured"


def test_go_targets_are_checked_against_the_default_protobuf_peer_and_the_json_peer() -> None:
    names = ("informerd", "client-go", "client-go-json", "informerd-controller-w1", "controller-runtime-w1",
             "controller-runtime-json-w1")  # fmt: skip
    chosen = [SCENARIOS[n] for n in names]
    figures = {"informerd": (2.0, 0.0), "client-go": (1.0, 0.0), "client-go-json": (4.0, 0.0),
               "informerd-controller-w1": (2.0, 900.0), "controller-runtime-w1": (1.0, 1000.0),
               "controller-runtime-json-w1": (3.0, 300.0)}  # fmt: skip
    rows = [
        {"scenario": name, "n": 1000, "sync_s": sync_s, **({"initial_reconciles_per_s": rate} if rate else {})}
        for name, (sync_s, rate) in figures.items()
    ]
    args = argparse.Namespace(sizes=[1000], note="", runs=1, updates=10, qps=5.0, burst=10, chosen=[])
    results = report.build(args, "cmd", {}, {}, chosen, rows, [], driver.medians)
    assert results["scenarios"]["client-go"]["wire"] == "protobuf"
    assert results["scenarios"]["client-go-json"]["wire"] == "json"
    by_target = {t["target"]: (t["measured"], t["met"]) for t in results["targets"]}
    sync = "N = 1,000: sync time <= 1.0x client-go's"
    assert by_target[f"{sync} [client-go, protobuf]"] == ("2.00x", "no")
    assert by_target[f"{sync} [client-go-json, json]"] == ("0.50x", "yes")
    rec = "N = 1,000: reconciles/s (initial pass, 1 worker) >= controller-runtime's"
    assert by_target[f"{rec} [controller-runtime-w1, protobuf]"] == ("0.90x", "no")
    assert by_target[f"{rec} [controller-runtime-json-w1, json]"] == ("3.00x", "yes")


def test_the_driver_fails_a_go_peer_whose_wire_is_not_its_scenarios() -> None:
    pb = ["application/vnd.kubernetes.protobuf;stream=watch"]
    driver.check_wire(SCENARIOS["client-go"], {"wire": "protobuf", "content_types": pb})
    driver.check_wire(SCENARIOS["client-go-json"], {"wire": "json", "content_types": ["application/json"]})
    driver.check_wire(SCENARIOS["informerd"], {})  # the Python peers talk JSON and do not report it
    with pytest.raises(driver.PeerFailed, match="expected wire 'json'"):
        driver.check_wire(SCENARIOS["controller-runtime-json-w1"], {"wire": "json", "content_types": pb})
    with pytest.raises(driver.PeerFailed):
        driver.check_wire(SCENARIOS["client-go"], {"wire": "json", "content_types": ["application/json"]})
    with pytest.raises(driver.PeerFailed):  # an older binary that reports nothing
        driver.check_wire(SCENARIOS["client-go"], {})


def test_server_cpu_is_a_figure_when_measured_and_nan_otherwise() -> None:
    events = {"events": 1, "first_event_t": 1.0, "last_event_t": 1.0, "cpu_s": 0.01, "latencies_ms": []}
    measured = {**synced(), "server_cpu_sync_s": 0.75}
    f = driver.figures(SCENARIOS["informerd"], 1000, 1, measured, None, events, 1.0, 2.0)
    assert f["server_cpu_sync_s"] == 0.75 and "server_cpu_sync_s" not in f["detail"]
    g = driver.figures(SCENARIOS["informerd"], 1000, 1, synced(), None, events, 1.0, 2.0)
    assert math.isnan(g["server_cpu_sync_s"])


def test_server_cpu_reads_the_control_planes_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setattr(driver, "SERVER_PIDS", [])
    assert driver.server_cpu_s() is None  # a cluster the driver did not start
    monkeypatch.setattr(driver, "SERVER_PIDS", [os.getpid()])
    before = driver.server_cpu_s()
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:  # burn a little CPU for the counter to move
        pass
    after = driver.server_cpu_s()
    assert before is not None and after is not None and after > before


def test_baseline_twins_only_the_informerd_scenarios_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib
    import subprocess

    chosen = [SCENARIOS[n] for n in ("informerd", "informerd-inline", "client-go")]
    with contextlib.ExitStack() as stack:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        everyone = driver.baseline_scenarios(chosen, rev, stack)
        only = driver.baseline_scenarios(chosen, rev, stack, frozenset({"informerd"}))
    assert [s.name for s in everyone] == [
        "informerd",
        f"informerd@{rev}",
        "informerd-inline",
        f"informerd-inline@{rev}",
        "client-go",
    ]
    assert [s.name for s in only] == ["informerd", f"informerd@{rev}", "informerd-inline", "client-go"]
