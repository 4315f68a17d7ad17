"""``/metrics`` and the probes against a real apiserver: a shared informer and a controller (which
patches what it reconciles and records Events) run with the exporter's hooks, the servers answer on
loopback, and ``promtool check metrics`` (built by ``python -m informers.testing install``) finds no
problem in a real scrape that carries non-zero values for the reference metrics."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from typing import Any

import anyio
import pytest

from controllers.checks import controllers_synced, informers_synced, watches_healthy, workers_not_wedged
from controllers.controller import Controller
from controllers.metrics import CONTENT_TYPE, MetricsExporter
from controllers.probes import HealthChecks, ping
from controllers.recorder import EventRecorder
from controllers.request import Request
from controllers.result import Result
from controllers.servers import metrics_server, probe_server
from controllers.writer import ApiWriter, WriterOptions
from informers.client import ApiClient
from informers.config import load_config
from informers.factory import InformerFactory
from informers.resources import Resource
from informers.testing import ControlPlane, MissingBinaryError, find_promtool

from .daemon_support import samples as values
from .daemon_support import total

pytestmark = pytest.mark.integration

CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", True)
OBJECTS = 12


def fetch(url: str) -> tuple[int, dict[str, str], str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def test_promtool_finds_no_problem_in_a_live_scrape(control_plane: ControlPlane, namespace: str) -> None:
    try:
        promtool = find_promtool()
    except MissingBinaryError as exc:
        pytest.fail(str(exc), pytrace=False)
    for i in range(OBJECTS):
        control_plane.request_json(
            "POST",
            CONFIGMAPS.path(namespace),
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}"}, "data": {"i": str(i)}},
        )

    exporter = MetricsExporter()
    client = ApiClient(load_config(str(control_plane.admin_kubeconfig), qps=-1), observer=exporter.request_observer)
    writer = ApiWriter(client, WriterOptions(field_manager="metrics-test"))
    recorder = EventRecorder(writer, "example.com/metrics-test")

    def reconcile(request: Request, obj: dict[str, Any] | None, ctx: Any) -> Result | None:
        if obj is None:
            return None
        if obj["metadata"].get("labels", {}).get("observed") != "yes":
            writer.patch(
                CONFIGMAPS, obj["metadata"]["name"], {"metadata": {"labels": {"observed": "yes"}}}, namespace=namespace
            )
            recorder.normal(obj, "Observed", "labelled by the metrics test", resource=CONFIGMAPS)
        return Result.requeue_after(30)

    healthz, readyz = HealthChecks("healthz"), HealthChecks("readyz")
    scraped: dict[str, Any] = {}

    async def main() -> None:
        async with InformerFactory(client, namespace=namespace) as factory:
            controller = Controller(
                factory,
                CONFIGMAPS,
                reconcile,
                name="configmap",
                max_concurrent_reconciles=2,
                reconcile_timeout=30,
                metrics=exporter.reconcile_metrics("configmap"),
                queue_metrics=exporter.workqueue_metrics("configmap"),
            )
            exporter.informers = lambda: factory.informers
            exporter.controllers = lambda: [controller]
            exporter.client = lambda: client
            exporter.writer = lambda: writer
            exporter.recorder = lambda: recorder
            exporter.leader = lambda: {"metrics-test-lease": True}
            exporter.record_plugin_error("example-plugin", "load")
            healthz.add("ping", ping)
            healthz.add("watches", watches_healthy(factory))
            healthz.add("workers", workers_not_wedged(controller))
            readyz.add("informers", informers_synced(factory))
            readyz.add("controllers", controllers_synced(lambda: [controller]))
            metrics = metrics_server("127.0.0.1:0", exporter)
            probes = probe_server("127.0.0.1:0", healthz, readyz)
            assert metrics is not None and probes is not None
            async with anyio.create_task_group() as group:
                await group.start(metrics.serve)
                await group.start(probes.serve)
                scraped["not ready"] = await anyio.to_thread.run_sync(fetch, f"{probes.url}/readyz")
                group.start_soon(controller.run)
                assert await controller.wait_synced(60), "controller caches did not sync"
                with anyio.fail_after(60):
                    while (
                        writer.statistics().calls.get("patch", 0) < OBJECTS
                        or recorder.statistics().created < 1
                        or controller.statistics().workers.requeue_after_total < OBJECTS
                    ):
                        await anyio.sleep(0.1)
                scraped["metrics"] = await anyio.to_thread.run_sync(fetch, f"{metrics.url}/metrics")
                scraped["readyz"] = await anyio.to_thread.run_sync(fetch, f"{probes.url}/readyz?verbose")
                scraped["healthz"] = await anyio.to_thread.run_sync(fetch, f"{probes.url}/healthz?verbose")
                group.cancel_scope.cancel()

    try:
        anyio.run(main)
    finally:
        recorder.close()
        writer.close()
        client.close()

    assert scraped["not ready"][0] == 500  # before the controller ran, nothing was synced
    assert scraped["readyz"][:1] == (200,) and scraped["readyz"][2].endswith("healthz check passed\n")
    assert scraped["healthz"][0] == 200, scraped["healthz"][2]
    assert "[+]watches ok\n" in scraped["healthz"][2] and "[+]workers ok\n" in scraped["healthz"][2]

    status, headers, body = scraped["metrics"]
    assert status == 200 and headers["Content-Type"] == CONTENT_TYPE
    check = subprocess.run([str(promtool), "check", "metrics"], input=body.encode(), capture_output=True, timeout=60)
    problems = (check.stdout + check.stderr).decode()
    assert check.returncode == 0, problems
    assert problems.strip() == "", problems

    v = values(body)
    c = {"controller": "configmap"}
    assert total(v, "controller_runtime_reconcile_total", result="requeue_after", **c) >= OBJECTS
    assert total(v, "controller_runtime_reconcile_time_seconds_count", **c) >= OBJECTS
    assert total(v, "controller_runtime_max_concurrent_reconciles", **c) == 2
    assert total(v, "workqueue_adds_total", name="configmap", **c) >= OBJECTS
    assert total(v, "workqueue_queue_duration_seconds_count", **c) >= OBJECTS
    assert total(v, "workqueue_work_duration_seconds_count", **c) >= OBJECTS
    assert total(v, "rest_client_requests_total", code="200", method="GET") > 0
    assert total(v, "rest_client_requests_total", code="200", method="PATCH") >= OBJECTS
    assert total(v, "rest_client_request_duration_seconds_count", verb="PATCH") >= OBJECTS
    assert total(v, "informerd_informer_cached_objects", resource="configmaps.v1") >= OBJECTS
    assert total(v, "informerd_informer_events_total", type="MODIFIED") >= OBJECTS  # our own patches
    assert total(v, "informerd_informer_lists_total") >= 1
    assert total(v, "informerd_informer_watch_requests_total") >= 1
    assert total(v, "informerd_informer_synced") == 1
    assert total(v, "informerd_handler_delivered_total") >= OBJECTS
    assert total(v, "informerd_writer_calls_total", verb="patch") >= OBJECTS
    assert total(v, "informerd_event_recorder_created_total") >= 1
    assert total(v, "informerd_plugin_errors_total", plugin="example-plugin") == 1
    assert total(v, "leader_election_master_status", name="metrics-test-lease") == 1
    assert total(v, "process_cpu_seconds_total") > 0
    assert namespace not in "".join(n for (n, _) in v)  # namespaces only ever appear as label values
