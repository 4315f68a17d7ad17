"""Smoke run of the peers benchmark (``bench/peers``), so the harness cannot rot: every default peer
(informerd's informer and Controller, client-go and controller-runtime on their default protobuf
and on forced JSON, kopf, the official client's SharedInformer) runs end to end at N = 100 for one
round on its own control plane, and the report holds every figure. No timing is asserted: only
that each peer cached every pod, saw every patch, talked the wire format its scenario names and
reported what the tables need.

The Go peers are built with the machine's Go (the module proxy serves their pinned modules); kopf
comes from the ``dev``/``bench`` extra."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.peers import driver
from bench.peers.scenarios import DEFAULT_SCENARIOS, SCENARIOS

pytestmark = pytest.mark.integration

N = 100
UPDATES = 40


def finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


@pytest.mark.timeout(1800)  # builds two Go programs on first use
def test_every_peer_caches_every_pod_sees_every_patch_and_the_report_holds_every_figure(tmp_path: Path) -> None:
    argv = ["-n", str(N), "--runs", "1", "--updates", str(UPDATES), "--queue-items", "2000"]
    argv += ["--settle", "0", "--timeout", "240", "--out", str(tmp_path), "--note", "smoke run"]
    driver.main(argv)

    results = json.loads((tmp_path / "results.json").read_text())
    in_cluster = results["data_set"][str(N)]["pods_in_cluster"]
    assert in_cluster >= N
    medians = results["medians"][str(N)]
    assert set(medians) == set(DEFAULT_SCENARIOS)
    for name in DEFAULT_SCENARIOS:
        kind = SCENARIOS[name].kind
        row = medians[name]
        assert row["objects"] == in_cluster, name
        assert row["events_seen"] == UPDATES, name  # every patch reached the handler / reconciler
        for key in ("sync_s", "cpu_sync_s", "bytes_per_object", "peak_mb", "cpu_us_per_event", "write_per_s"):
            assert finite(row[key]), (name, key)
        if kind in ("informer", "operator"):
            assert finite(row["events_per_s"]) and finite(row["handler_p99_ms"]), name
            assert 0 < row["handler_p50_ms"] <= row["handler_p99_ms"], name  # write time came through the annotation
        if kind in ("controller", "operator"):
            assert 0 < row["reconcile_p50_ms"] <= row["reconcile_p99_ms"], name
            assert finite(row["all_reconciled_s"]), name
        if kind == "controller":
            assert finite(row["initial_reconciles_per_s"]) and finite(row["reconciles_per_s"]), name
    assert not any(r["timed_out"] for r in results["runs"])
    media = {"json": "application/json", "protobuf": "application/vnd.kubernetes.protobuf"}
    go_wires = set()
    for run in results["runs"]:
        s = SCENARIOS[run["scenario"]]
        assert results["scenarios"][s.name]["wire"] == s.wire
        if s.go:  # what the Go peer asked for, and what the server's pod responses carried
            go_wires.add((s.go, s.wire))
            assert run["detail"]["wire"] == s.wire, s.name
            types = run["detail"]["content_types"]
            assert types and all(t.split(";")[0] == media[s.wire] for t in types), (s.name, types)
    assert go_wires == {(go, wire) for go in ("clientgo", "controllerruntime") for wire in ("json", "protobuf")}
    ratios = results["ratios"][str(N)]
    assert ratios["informerd"]["sync_s"] == 1.0
    assert ratios["controller-runtime-w1"]["initial_reconciles_per_s"] > 0
    for peer in ("client-go workqueue", "informerd WorkQueue"):
        assert results["workqueue"][peer]["one_thread"] > 0 and results["workqueue"][peer]["workers"] > 0
    machine = results["machine"]
    assert machine["kopf"] and machine["kubernetes"] and machine["controller_runtime"] and machine["client_go"]
    assert results["command"].startswith(".venv/bin/python -m bench.peers")

    report = (tmp_path / "RESULTS.md").read_text()
    assert f"## N = {N} pods" in report and "smoke run" in report and results["command"] in report
    for name in DEFAULT_SCENARIOS:
        assert f"| {name} |" in report
        assert f"| {name} | {SCENARIOS[name].kind} | {SCENARIOS[name].wire} |" in report  # the Peers table
    assert "[client-go, protobuf] |" in report and "[client-go-json, json] |" in report  # targets against both
    assert "[controller-runtime-json-w4, json] |" in report
