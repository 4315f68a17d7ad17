"""The chart's Grafana dashboard and alert rules query only what the daemon exports.

The daemon itself (``informerd run`` with the example backup-controller config: a reconciler and a
handler plugin, leader election on) runs against the real apiserver, fails some reconciles and
then succeeds, and serves ``/metrics``; every metric named by a dashboard query, a dashboard variable
or an alert expression must be declared in that scrape, and every label they select or group by
must be on those series (or be one Prometheus attaches to the target). ``promtool check rules``
accepts the rule file, and ``promtool test rules`` shows each alert firing on the series it is
about and staying silent on healthy ones."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
import yaml
from backup_controller import BACKUPS, crd
from prometheus_client.parser import text_string_to_metric_families

from informers.testing import ControlPlane, MissingBinaryError, find_promtool
from tests.monitoring import RULES, alert_queries, alert_rules, dashboard_queries
from tests.promql_names import declared_names

pytestmark = pytest.mark.integration

PLUGIN = Path(__file__).resolve().parents[2] / "examples" / "backup-controller"
CRD = "backups.backup.informerd.dev"
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


_T = TypeVar("_T")


def wait_for(get: Callable[[], _T | None], timeout: float, what: str) -> _T:
    """The first truthy value of ``get()`` within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (got := get()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)
    return got


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except OSError as exc:
        return 0, str(exc)


class Daemon:
    """``informerd run`` as a child process, its JSON log lines collected by a thread."""

    def __init__(self, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INFORMERD_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "controllers.cli", "run", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.logs: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with contextlib.suppress(ValueError):
                self.logs.append(orjson.loads(line))

    def metrics_url(self) -> str | None:
        for entry in list(self.logs):
            if entry.get("event") == "serving" and entry.get("server") == "metrics":
                return f"{entry['address']}/metrics"
        return None

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._reader.join(10)


def value(scrape: str, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(
        sample.value
        for family in text_string_to_metric_families(scrape)
        for sample in family.samples
        if sample.name == name and want <= set(sample.labels.items())
    )


def scrape_running_daemon(plane: ControlPlane, namespace: str, records: str, tmp: Path) -> str:
    """The ``/metrics`` text of ``informerd run`` with the example backup-controller config (its
    reconciler and handler plugins), leading its Lease, after its reconciles failed (the record
    namespace did not exist yet: writer, reconcile and plugin errors) and then succeeded."""
    config = yaml.safe_load((PLUGIN / "config.yaml").read_text())
    config["namespace"] = namespace
    config["reconcilers"][0]["options"]["recordNamespace"] = records
    config["reconcilers"][0]["name"] = "backup"  # the controller label
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    daemon = Daemon(
        "--config",
        str(path),
        "--kubeconfig",
        str(plane.admin_kubeconfig),
        "--metrics-bind-address",
        "127.0.0.1:0",
        "--health-probe-bind-address",
        "0",
        "--leader-elect",
        "--leader-election-namespace",
        namespace,
    )
    try:
        for name in ("nightly", "weekly"):
            body = {
                "apiVersion": "backup.informerd.dev/v1",
                "kind": "Backup",
                "metadata": {"name": name},
                "spec": {"source": {"kind": "ConfigMap", "name": name}},
            }
            plane.request_json("POST", BACKUPS.path(namespace), body)
        url = wait_for(daemon.metrics_url, 60, "the daemon's metrics server")
        wait_for(
            lambda: (
                daemon.proc.poll() is None
                and value(fetch(url)[1], "controller_runtime_reconcile_errors_total", controller="backup") >= 1
            ),
            60,
            "a failed reconcile (no record namespace yet)",
        )
        plane.request_json("POST", "/api/v1/namespaces", {"metadata": {"name": records}})
        wait_for(
            lambda: all(
                plane.request_json("GET", BACKUPS.path(namespace, name)).get("status", {}).get("jobName")
                for name in ("nightly", "weekly")
            ),
            60,
            "both Backups reconciled once the record namespace exists",
        )
        status, text = fetch(url)
        assert status == 200, text
    except AssertionError as exc:
        daemon.stop()
        raise AssertionError(f"{exc}\ndaemon log (last 30 lines):\n" + "\n".join(map(str, daemon.logs[-30:]))) from None
    finally:
        code = daemon.stop()
    assert code == 0, daemon.logs[-20:]
    assert value(text, "leader_election_master_status") == 1
    assert value(text, "informerd_plugin_errors_total", plugin="backup", kind="reconcile") >= 1
    assert value(text, "controller_runtime_reconcile_total", controller="backup", result="success") >= 2
    return text


@pytest.fixture(scope="module")
def scrape(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    namespace, records = "dashboard-metrics", "dashboard-metrics-records"
    created = control_plane.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD}")[0] == 404
    if created:
        control_plane.request_json("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd())
        wait_for(lambda: control_plane.request("GET", BACKUPS.path(None))[0] == 200, 30, "the Backup CRD served")
    control_plane.request_json("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    try:
        yield scrape_running_daemon(control_plane, namespace, records, tmp_path_factory.mktemp("daemon"))
    finally:
        for ns in (namespace, records):
            control_plane.request("DELETE", f"/api/v1/namespaces/{ns}")
        if created:
            control_plane.request("DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD}")


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
        "InformerdHandlerStuck",
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
    stuck = {"namespace": "ns", "pod": "p", "resource": "live.v1", "handler": "stuck"}

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
                    series("informerd_handler_busy_seconds", stuck, "0+60x60"),
                    series("informerd_handler_busy_seconds", {**stuck, "handler": "quick"}, "0x60"),
                ],
                "alert_rule_test": [
                    {"eval_time": "10m", "alertname": "InformerdReconcileErrorsRising", "exp_alerts": []},
                    {
                        "eval_time": "30m",
                        "alertname": "InformerdReconcileErrorsRising",
                        "exp_alerts": [expected("InformerdReconcileErrorsRising", bad, "50%")],
                    },
                    {"eval_time": "18m", "alertname": "InformerdWatchStalled", "exp_alerts": []},
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
                    {"eval_time": "8m", "alertname": "InformerdHandlerStuck", "exp_alerts": []},
                    {
                        "eval_time": "30m",
                        "alertname": "InformerdHandlerStuck",
                        "exp_alerts": [expected("InformerdHandlerStuck", stuck, "30m 0s")],
                    },
                ],
            }
        ],
    }
    path = tmp_path / "alerts_test.yaml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    run = subprocess.run([str(promtool()), "test", "rules", str(path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
