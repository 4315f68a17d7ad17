"""Replicas of ``informerd run --leader-elect`` (subprocesses) with the example plugin package
against a real apiserver: only the leader reconciles; SIGKILL of the leader hands over once the
Lease expires; SIGTERM of the leader releases the Lease, so a standby takes over well before it
would expire; across it all, exactly one Job per (Backup UID, generation) and one record per Backup."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from backup_controller import job_name, record_name
from backup_controller.kit import DaemonProcess, backup_manifest, succeed_job, wait_for

from informers.testing import ControlPlane

from .daemon_support import (
    backups,
    create_backup,
    example_config,
    is_ready_at,
    job_runs,
    patch_backup,
    prepare,
    records,
    samples,
    total,
)

pytestmark = pytest.mark.integration

LEASE = {"leaseDuration": 10, "renewDeadline": 7, "retryPeriod": 1}


def leading(daemon: DaemonProcess) -> bool:
    status, text = daemon.metrics()
    return status == 200 and total(samples(text), "leader_election_master_status") == 1


def reconciles(daemon: DaemonProcess) -> float:
    status, text = daemon.metrics()
    assert status == 200, text
    return total(samples(text), "controller_runtime_reconcile_total")


def identity(daemon: DaemonProcess) -> str:
    found = [e["identity"] for e in daemon.logs() if e.get("event") == "caches warm; campaigning"]
    assert found, daemon.log_tail()
    return str(found[0])


def lease_holder(plane: ControlPlane, namespace: str, name: str) -> str:
    lease = plane.request_json("GET", f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}")
    return str(lease["spec"].get("holderIdentity") or "")


def test_only_the_leader_reconciles_and_handovers_never_duplicate_a_job_or_record(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    records_ns = prepare(control_plane, namespace)
    lease_name = "backup-controller-leader"
    config = example_config(
        namespace, records_ns, drainTimeout=10, leaderElection={"id": lease_name, "namespace": namespace, **LEASE}
    )
    kubeconfig = control_plane.admin_kubeconfig
    replicas = {
        n: DaemonProcess(config, kubeconfig, tmp_path, name=n, args=["--leader-elect"]) for n in ("r1", "r2", "r3")
    }
    r1, r2, r3 = replicas["r1"], replicas["r2"], replicas["r3"]
    try:
        r1.start()
        r1.wait_ready(120)  # a standby is ready with warm caches, leading or not
        wait_for(lambda: leading(r1), 60, "r1 to lead")
        r2.start()
        r2.wait_ready(120)
        assert lease_holder(control_plane, namespace, lease_name) == identity(r1)

        uids = {n: create_backup(control_plane, namespace, backup_manifest(n))["metadata"]["uid"] for n in "xyz"}
        wait_for(lambda: len(job_runs(control_plane, namespace)) == 3, 60, "a Job per Backup")
        wait_for(lambda: len(records(control_plane, records_ns)) == 3, 60, "a record per Backup")
        assert reconciles(r1) > 0 and reconciles(r2) == 0 and not leading(r2)

        # SIGKILL: nothing is released; r2 takes over once the Lease expires.
        r1.stop(signal.SIGKILL, timeout=30)
        killed = time.monotonic()
        wait_for(lambda: leading(r2), 4 * LEASE["leaseDuration"], "r2 to lead after r1 was killed")
        took_over_after_kill = time.monotonic() - killed
        assert lease_holder(control_plane, namespace, lease_name) == identity(r2)
        succeed_job(control_plane, namespace, job_name(uids["x"], 1))
        wait_for(lambda: is_ready_at(control_plane, namespace, "x", 1), 60, "r2 to mark x Ready")
        patch_backup(control_plane, namespace, "y", {"spec": {"trigger": "2"}})
        wait_for(lambda: len(job_runs(control_plane, namespace)) == 4, 60, "r2 to run y's generation 2")
        assert reconciles(r2) > 0

        # SIGTERM: r2 drains and releases the Lease; r3 takes over at its next retry.
        r3.start()
        r3.wait_ready(120)
        assert not leading(r3)
        assert r2.stop(signal.SIGTERM, timeout=40) == 0
        released = time.monotonic()
        assert lease_holder(control_plane, namespace, lease_name) in ("", identity(r3))  # not left to expire
        wait_for(lambda: leading(r3), 4 * LEASE["leaseDuration"], "r3 to lead after r2 stopped")
        took_over_after_term = time.monotonic() - released
        print(f"handover after SIGKILL {took_over_after_kill:.1f} s, after SIGTERM {took_over_after_term:.1f} s")
        assert took_over_after_term < LEASE["leaseDuration"], (took_over_after_term, took_over_after_kill)
        assert any(e.get("event") == "released the Lease" for e in r2.logs())
        succeed_job(control_plane, namespace, job_name(uids["y"], 2))
        wait_for(lambda: is_ready_at(control_plane, namespace, "y", 2), 60, "r3 to mark y Ready at generation 2")
        control_plane.request_json("DELETE", f"/apis/backup.informerd.dev/v1/namespaces/{namespace}/backups/z")
        wait_for(lambda: "z" not in backups(control_plane, namespace), 60, "z to be gone")

        # Across both handovers: one Job per (UID, generation), one record per live Backup.
        assert job_runs(control_plane, namespace) == sorted(
            [(uids["x"], "1"), (uids["y"], "1"), (uids["y"], "2"), (uids["z"], "1")]
        )
        assert sorted(r["metadata"]["name"] for r in records(control_plane, records_ns)) == sorted(
            [record_name(uids["x"]), record_name(uids["y"])]
        )
        assert r3.stop(signal.SIGTERM, timeout=40) == 0
    finally:
        for daemon in replicas.values():
            daemon.close()
