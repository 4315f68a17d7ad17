"""The chart's Grafana dashboard and alert rules query only what the daemon exports.

A Manager (leader election on, a controller and a notification handler) runs against the real
apiserver and serves ``/metrics``; every metric named by a dashboard query, a dashboard variable
or an alert expression must be declared in that scrape, and every label they select or group by
must be on those series (or be one Prometheus attaches to the target). ``promtool check rules``
accepts the rule file, and ``promtool test rules`` shows each alert firing on the series it is
about and staying silent on healthy ones."""

from __future__ import annotations

import re
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from controllers import Context, Manager
from informers.config import load_config
from informers.errors import InformerdError
from informers.resources import Resource
from informers.testing import ControlPlane, MissingBinaryError, find_promtool
from tests.monitoring import RULES, alert_queries, alert_rules, dashboard_queries
from tests.promql_names import declared_names

pytestmark = pytest.mark.integration

CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", True)
# Labels Prometheus attaches to every series of a target (Kubernetes service discovery and the
# ServiceMonitor's relabelling), so the daemon never exports them itself.
TARGET_LABELS = frozenset({"namespace", "pod", "job", "instance", "service", "container", "endpoint"})
# Families whose series exist only once the thing they count happened (a watch restart takes the
# server's watch timeout, minutes): their names are checked, their labels cannot be.
MAY_HAVE_NO_SAMPLES = frozenset({"informerd_informer_watch_restarts_total"})


def promtool() -> Path:
    try:
        return find_promtool()
    except MissingBinaryError as exc:
        pytest.fail(str(exc), pytrace=False)


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        text: str = answer.read().decode()
        return text


def scrape_running_manager(plane: ControlPlane, namespace: str) -> str:
    """The ``/metrics`` text of a leading Manager that has reconciled, failed once and recorded Events."""
    for name in ("good", "bad"):
        plane.request_json("POST", CONFIGMAPS.path(namespace), {"metadata": {"name": name}, "data": {"k": name}})
    mgr = Manager(
        load_config(str(plane.admin_kubeconfig)),
        namespace=namespace,
        name="dashboard-test",
        metrics_bind_address="127.0.0.1:0",
        health_probe_bind_address="0",
        leader_election=True,
        leader_election_namespace=namespace,
    )
    seen: list[object] = []

    @mgr.reconcile(CONFIGMAPS, workers=2, timeout=30)
    async def reconcile(ctx: Context) -> None:
        if ctx.obj is None:
            return
        ctx.event("Seen", "seen by the dashboard test")
        if ctx.name == "bad":  # a write the server refuses: a writer error and a reconcile error
            try:
                await ctx.api(CONFIGMAPS).create(
                    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "good"}}
                )
            except InformerdError:
                mgr.record_plugin_error("dashboard-test", "reconcile")  # as the daemon's plugin wrapper does
                raise

    @mgr.on(CONFIGMAPS)
    def handler(note: object) -> None:
        seen.append(note)

    def reconciled() -> bool:
        if mgr.elector is None or not mgr.elector.is_leader() or not mgr.controllers or mgr.recorder is None:
            return False
        workers = mgr.controllers[0].statistics().workers
        return workers.success_total >= 1 and workers.error_total >= 1 and mgr.recorder.statistics().created >= 1

    async def main() -> str:
        async with anyio.create_task_group() as group:
            group.start_soon(mgr.serve)
            with anyio.fail_after(90):
                while not reconciled() or len(seen) < 2:
                    await anyio.sleep(0.1)
            url = f"http://127.0.0.1:{mgr.servers['metrics']}/metrics"
            body = await anyio.to_thread.run_sync(fetch, url)  # the server runs on this loop
            group.cancel_scope.cancel()
        return body

    return anyio.run(main)


@pytest.fixture(scope="module")
def scrape(control_plane: ControlPlane) -> str:
    namespace = "dashboard-metrics"
    control_plane.request_json("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    try:
        return scrape_running_manager(control_plane, namespace)
    finally:
        control_plane.request("DELETE", f"/api/v1/namespaces/{namespace}")


def sample_labels(scrape: str) -> dict[str, set[str]]:
    """Series name -> the label names its samples carry."""
    out: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(scrape):
        for sample in family.samples:
            out.setdefault(sample.name, set()).update(sample.labels)
    return out


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_every_query_names_only_exported_metrics_and_labels(scrape: str, source: str) -> None:
    queries = dashboard_queries() if source == "dashboard" else alert_queries()
    assert len(queries) >= (40 if source == "dashboard" else 4)
    declared, labelled = declared_names(scrape), sample_labels(scrape)
    assert "controller_runtime_reconcile_time_seconds_bucket" in declared  # the histogram expansion
    empty = {name for name in declared if name not in labelled and declared[name] != "histogram"}
    problems: list[str] = []
    for where, refs in queries.items():
        assert refs.metrics, f"{where}: names no metric"
        unknown = sorted(refs.metrics - declared.keys())
        if unknown:
            problems.append(f"{where}: not exported: {', '.join(unknown)}")
            continue
        if refs.metrics & empty:
            assert refs.metrics & empty <= MAY_HAVE_NO_SAMPLES, f"{where}: no samples for {refs.metrics & empty}"
            continue
        allowed = set(TARGET_LABELS).union(*(labelled.get(m, set()) for m in refs.metrics))
        strange = sorted(refs.labels - allowed)
        if strange:
            problems.append(f"{where}: labels not on these series: {', '.join(strange)}")
    assert not problems, "\n".join(problems)


def test_promtool_accepts_the_rules() -> None:
    check = subprocess.run([str(promtool()), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in check.stdout, check.stdout
    for rule in alert_rules():
        assert rule["for"] and rule["labels"]["severity"] in ("warning", "critical") and rule["annotations"]["summary"]


def test_alerts_fire_on_what_they_describe_and_not_on_healthy_series(tmp_path: Path) -> None:
    """``promtool test rules``: one failing and one healthy instance of each condition; the alerts'
    labels and rendered annotations are compared whole."""
    by_name = {rule["alert"]: rule for rule in alert_rules()}
    assert set(by_name) == {
        "InformerdReconcileErrorsRising",
        "InformerdWatchStalled",
        "InformerdInformerNotSynced",
        "InformerdQueueLatencyHigh",
    }

    def expected(alert: str, labels: dict[str, str], value: str = "") -> dict[str, Any]:
        rule = by_name[alert]
        annotations = {}
        for key, text in rule["annotations"].items():
            for name, label in labels.items():
                text = text.replace(f"{{{{ $labels.{name} }}}}", label)
            annotations[key] = re.sub(r"\{\{ \$value \| \w+ \}\}", value, text)
        return {"exp_labels": {**labels, "severity": rule["labels"]["severity"]}, "exp_annotations": annotations}

    bad = {"namespace": "ns", "controller": "failing"}
    good = {"namespace": "ns", "controller": "healthy"}
    stalled = {"namespace": "ns", "pod": "p", "resource": "stalled.v1"}
    live = {"namespace": "ns", "pod": "p", "resource": "live.v1"}
    queue = {"namespace": "ns", "name": "slow"}

    def series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
        inner = ", ".join(f'{k}="{v}"' for k, v in labels.items())
        return {"series": f"{name}{{{inner}}}", "values": values}

    def buckets(labels: dict[str, str], slow: bool) -> list[dict[str, str]]:
        # Every key waits 10-100 s (slow: P99 interpolates to 99.1 s) or under 1 ms.
        out = []
        for le in ("0.001", "0.01", "0.1", "1", "10", "100", "1000", "+Inf"):
            hit = float(le) >= (100 if slow else 0.001)
            out.append(
                series("workqueue_queue_duration_seconds_bucket", {**labels, "le": le}, "0+10x60" if hit else "0x60")
            )
        return out

    test = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    series("controller_runtime_reconcile_errors_total", bad, "0+6x60"),
                    series("controller_runtime_reconcile_total", {**bad, "result": "error"}, "0+6x60"),
                    series("controller_runtime_reconcile_total", {**bad, "result": "success"}, "0+6x60"),
                    series("controller_runtime_reconcile_errors_total", good, "0x60"),
                    series("controller_runtime_reconcile_total", {**good, "result": "success"}, "0+60x60"),
                    series("informerd_informer_last_event_age_seconds", stalled, "0+60x60"),
                    series("informerd_informer_last_event_age_seconds", live, "30x60"),
                    series("informerd_informer_synced", stalled, "0x60"),
                    series("informerd_informer_synced", live, "1x60"),
                    *buckets(queue, slow=True),
                    *buckets({"namespace": "ns", "name": "fast"}, slow=False),
                ],
                "alert_rule_test": [
                    {"eval_time": "10m", "alertname": "InformerdReconcileErrorsRising", "exp_alerts": []},
                    {
                        "eval_time": "30m",
                        "alertname": "InformerdReconcileErrorsRising",
                        "exp_alerts": [expected("InformerdReconcileErrorsRising", bad, "50%")],
                    },
                    {"eval_time": "12m", "alertname": "InformerdWatchStalled", "exp_alerts": []},
                    {
                        "eval_time": "30m",
                        "alertname": "InformerdWatchStalled",
                        "exp_alerts": [expected("InformerdWatchStalled", stalled, "30m 0s")],
                    },
                    {"eval_time": "5m", "alertname": "InformerdInformerNotSynced", "exp_alerts": []},
                    {
                        "eval_time": "30m",
                        "alertname": "InformerdInformerNotSynced",
                        "exp_alerts": [expected("InformerdInformerNotSynced", stalled)],
                    },
                    {"eval_time": "10m", "alertname": "InformerdQueueLatencyHigh", "exp_alerts": []},
                    {
                        "eval_time": "30m",
                        "alertname": "InformerdQueueLatencyHigh",
                        "exp_alerts": [expected("InformerdQueueLatencyHigh", queue, "1m 39s")],
                    },
                ],
            }
        ],
    }
    path = tmp_path / "alerts_test.yaml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    run = subprocess.run([str(promtool()), "test", "rules", str(path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
