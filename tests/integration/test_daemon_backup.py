"""``informerd run`` as a subprocess with the example plugin package, against a real apiserver:
Backups reconciled end to end (one Job per generation, Ready with observedGeneration once the Job
succeeds, the record deleted by the finalizer), ``/readyz`` flipping to 200 once the informers can
sync (the daemon runs as a user whose RBAC first withholds list/watch on Backups), ``/metrics``
scraped over HTTP with controller-runtime's names carrying values and passing ``promtool check
metrics``, ``/healthz`` failing while the watch is stalled through the fault proxy and passing
after recovery, and SIGTERM exiting 0."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
from backup_controller import FINALIZER, job_name, record_name
from backup_controller.kit import DaemonProcess, backup_manifest, succeed_job, wait_for

from informers.testing import ControlPlane, FaultProxy, MissingBinaryError, find_promtool

from .daemon_support import (
    backups,
    create_backup,
    example_config,
    get_backup,
    grant,
    is_ready_at,
    job_runs,
    patch_backup,
    prepare,
    present,
    records,
    samples,
    total,
)

pytestmark = pytest.mark.integration

DRAIN = 10.0


def test_informerd_run_reconciles_backups_serves_probes_and_metrics_and_stops_on_sigterm(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    try:
        promtool = find_promtool()
    except MissingBinaryError as exc:
        pytest.fail(str(exc), pytrace=False)
    records_ns = prepare(control_plane, namespace)
    user = f"backup-daemon-{namespace}"
    grant(control_plane, user, read_backups=False)
    config = example_config(namespace, records_ns, drainTimeout=DRAIN)
    with DaemonProcess(config, control_plane.user_kubeconfig(user), tmp_path) as daemon:
        # Not ready while the informers cannot list Backups; ?verbose names every check.
        wait_for(lambda: daemon.probe("/readyz/informers")[0] == 500, 60, "/readyz/informers to fail")
        status, body = daemon.probe("/readyz?verbose")
        assert status == 500 and "[-]informers failed: reason withheld\n" in body, body
        assert "[+]ping ok\n" in body and body.endswith("healthz check failed\n")
        assert "Forbidden" in daemon.probe("/readyz/informers")[1]
        grant(control_plane, user, read_backups=True)
        daemon.wait_ready(120)
        status, body = daemon.probe("/readyz?verbose")
        assert status == 200 and body.endswith("healthz check passed\n"), body
        assert {"[+]ping ok", "[+]informers ok", "[+]controllers ok"} <= set(body.splitlines())
        assert daemon.probe("/healthz")[0] == 200

        # Two Backups: one Job each (generation 1), a record each, the finalizer on each.
        uids = {n: create_backup(control_plane, namespace, backup_manifest(n))["metadata"]["uid"] for n in ("a", "b")}
        wait_for(lambda: len(job_runs(control_plane, namespace)) == 2, 60, "a Job per Backup")
        wait_for(lambda: len(records(control_plane, records_ns)) == 2, 60, "a record per Backup")
        assert job_runs(control_plane, namespace) == sorted((uid, "1") for uid in uids.values())
        for name, uid in uids.items():
            wait_for(
                lambda n=name: get_backup(control_plane, namespace, n).get("status", {}).get("recordName"),
                60,
                f"{name}'s status",
            )
            got = get_backup(control_plane, namespace, name)
            assert FINALIZER in got["metadata"]["finalizers"]
            assert got["status"]["recordName"] == record_name(uid)
        assert not is_ready_at(control_plane, namespace, "a", 1)

        # The Job succeeds -> Ready with observedGeneration.
        succeed_job(control_plane, namespace, job_name(uids["a"], 1))
        wait_for(lambda: is_ready_at(control_plane, namespace, "a", 1), 60, "Backup a Ready at generation 1")
        # A spec change is generation 2: a second Job, and Ready again once it succeeds.
        patch_backup(control_plane, namespace, "a", {"spec": {"trigger": "now"}})
        wait_for(lambda: len(job_runs(control_plane, namespace)) == 3, 60, "the generation-2 Job")
        succeed_job(control_plane, namespace, job_name(uids["a"], 2))
        wait_for(lambda: is_ready_at(control_plane, namespace, "a", 2), 60, "Backup a Ready at generation 2")
        assert job_runs(control_plane, namespace) == sorted([(uids["a"], "1"), (uids["a"], "2"), (uids["b"], "1")])

        # Deleting a Backup: the finalizer deletes its record, then the Backup is gone.
        control_plane.request_json("DELETE", f"/apis/backup.informerd.dev/v1/namespaces/{namespace}/backups/b")
        wait_for(lambda: "b" not in backups(control_plane, namespace), 60, "Backup b to be gone")
        assert [r["metadata"]["name"] for r in records(control_plane, records_ns)] == [record_name(uids["a"])]

        # /metrics over HTTP: controller-runtime's and client-go's names with values; promtool agrees.
        status, text = daemon.metrics()
        assert status == 200
        check = subprocess.run(
            [str(promtool), "check", "metrics"], input=text.encode(), capture_output=True, timeout=60
        )
        problems = (check.stdout + check.stderr).decode()
        assert check.returncode == 0 and problems.strip() == "", problems
        v = samples(text)
        c = {"controller": "backup"}
        assert total(v, "controller_runtime_reconcile_total", result="success", **c) >= 5
        assert total(v, "controller_runtime_reconcile_time_seconds_count", **c) >= 5
        assert total(v, "controller_runtime_max_concurrent_reconciles", **c) == 2
        assert present(v, "controller_runtime_active_workers")
        assert present(v, "controller_runtime_reconcile_errors_total")
        assert total(v, "workqueue_adds_total", name="backup") >= 5
        assert total(v, "workqueue_work_duration_seconds_count", name="backup") >= 5
        assert total(v, "workqueue_queue_duration_seconds_count", name="backup") >= 5
        assert present(v, "workqueue_depth") and present(v, "workqueue_retries_total")
        assert total(v, "rest_client_requests_total", method="POST", code="201") >= 5  # Jobs, records, events
        assert total(v, "rest_client_requests_total", method="PATCH", code="200") >= 3  # finalizers, status
        assert total(v, "informerd_informer_events_total", resource="backups.v1.backup.informerd.dev") >= 4
        assert total(v, "informerd_informer_cached_objects", resource="jobs.v1.batch") == 3
        assert total(v, "informerd_informer_synced") >= 2
        assert total(v, "process_resident_memory_bytes") > 0

        # SIGTERM: drain, stop, exit 0 within the drain timeout (plus start-up of the interpreter).
        assert daemon.stop(signal.SIGTERM, timeout=DRAIN + 20) == 0
        events = [e.get("event") for e in daemon.logs()]
        assert "signal received: draining" in events and "manager stopped" in events
        notes = [e for e in daemon.logs() if e.get("event") == "notification"]
        assert {(e["kind"], e["name"]) for e in notes} >= {("Backup", "a"), ("Backup", "b")}  # event-log plugin
        assert all("spec" not in e for e in notes)


def test_healthz_fails_while_the_watch_is_stalled_and_recovers(
    control_plane: ControlPlane, namespace: str, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """The liveness deadline is the idle timeout + the backoff cap + the grace: 5 + 2 + 5 s here
    (informers.idleTimeout, informers.maxBackoff, health.stallGrace; 11.5 min by default)."""
    records_ns = prepare(control_plane, namespace)
    config = example_config(
        namespace,
        records_ns,
        drainTimeout=DRAIN,
        informers={"idleTimeout": 5, "maxBackoff": 2},
        health={"stallGrace": 5},
        client={"connectTimeout": 2, "readTimeout": 5},
    )
    kubeconfig = control_plane.kubeconfig(server=fault_proxy.url)
    with DaemonProcess(config, kubeconfig, tmp_path) as daemon:
        daemon.wait_ready(120)
        assert daemon.probe("/healthz")[0] == 200
        create_backup(control_plane, namespace, backup_manifest("before"))
        wait_for(lambda: len(job_runs(control_plane, namespace)) == 1, 60, "the first Job")

        fault_proxy.stall()  # half-open: connections held, nothing forwarded either way
        fault_proxy.cut()  # the live watches end up on stalled connections too
        wait_for(lambda: daemon.probe("/healthz")[0] == 500, 90, "/healthz to fail while stalled")
        status, body = daemon.probe("/healthz?verbose")
        assert status == 500 and "[-]watches failed: reason withheld\n" in body, body
        assert "[+]ping ok\n" in body
        assert "no list page, watch event or accepted watch" in daemon.probe("/healthz/watches")[1]
        assert daemon.running()  # liveness fails; restarting is the kubelet's call

        fault_proxy.pass_through()
        wait_for(lambda: daemon.probe("/healthz")[0] == 200, 90, "/healthz to pass after recovery")
        create_backup(control_plane, namespace, backup_manifest("after"))
        wait_for(lambda: len(job_runs(control_plane, namespace)) == 2, 120, "a Job for the Backup made after recovery")
        assert daemon.stop(signal.SIGTERM, timeout=DRAIN + 20) == 0
