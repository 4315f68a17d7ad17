"""``make demo``: a local control plane, the Backup CRD, and ``informerd run`` reconciling Backups.

Brings up etcd + kube-apiserver (``informers.testing.ControlPlane``), installs ``crd.yaml``, runs
``informerd run --config examples/backup-controller/config.yaml`` as a subprocess (metrics and
probes on free loopback ports), creates, updates and deletes Backups, reports each Job's success
as a kubelet would (no kubelet runs here), prints the reconciled status, the Jobs, the records, a
``/metrics`` excerpt and ``/readyz``, then stops the daemon with SIGTERM and prints its exit code.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from informers.testing import ControlPlane

from .kit import DaemonProcess, backup_manifest, create_namespace, install_crd, succeed_job, wait_for
from .names import BACKUPS, JOBS, LABEL_UID, job_name, record_name

__all__ = ["main", "run_demo"]

CONFIG = Path(__file__).resolve().parent.parent / "config.yaml"
EXCERPT = (
    "controller_runtime_reconcile_total",
    "controller_runtime_max_concurrent_reconciles",
    "workqueue_adds_total",
    "rest_client_requests_total",
    "informerd_informer_cached_objects",
    "leader_election_master_status",
)


def _say(text: str = "") -> None:
    print(text, flush=True)


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _condition(obj: dict[str, Any], type_: str) -> str:
    for c in obj.get("status", {}).get("conditions", []):
        if c["type"] == type_:
            return f"{c['status']}/{c['reason']}"
    return "-"


def _show_backups(plane: ControlPlane, namespace: str) -> None:
    items = plane.request_json("GET", BACKUPS.path(namespace))["items"]
    _say(f"  {'BACKUP':<8} {'GEN':>3} {'OBSERVED':>8}  {'READY':<20} {'PROGRESSING':<18} JOB")
    for b in items:
        status = b.get("status", {})
        _say(
            f"  {b['metadata']['name']:<8} {b['metadata']['generation']:>3} {status.get('observedGeneration', '-'):>8}  "
            f"{_condition(b, 'Ready'):<20} {_condition(b, 'Progressing'):<18} {status.get('jobName', '-')}"
        )


def _show_jobs(plane: ControlPlane, namespace: str) -> None:
    items = plane.request_json("GET", JOBS.path(namespace))["items"]
    for j in items:
        owner = (j["metadata"].get("ownerReferences") or [{}])[0]
        _say(
            f"  job {j['metadata']['name']}  owner={owner.get('kind')}/{owner.get('name')}  succeeded={j.get('status', {}).get('succeeded', 0)}"
        )


def _records(plane: ControlPlane, namespace: str) -> list[str]:
    items = plane.request_json("GET", f"/api/v1/namespaces/{namespace}/configmaps")["items"]
    return [cm["metadata"]["name"] for cm in items if LABEL_UID in (cm["metadata"].get("labels") or {})]


def _progressing(plane: ControlPlane, namespace: str, name: str) -> bool:
    return _condition(plane.request_json("GET", BACKUPS.path(namespace, name)), "Progressing").startswith("True")


def _ready_at(plane: ControlPlane, namespace: str, name: str, generation: int) -> bool:
    b = plane.request_json("GET", BACKUPS.path(namespace, name))
    return _condition(b, "Ready").startswith("True") and b.get("status", {}).get("observedGeneration") == generation


def run_demo(config_path: Path = CONFIG) -> int:
    config = yaml.safe_load(config_path.read_text())
    namespace = config["namespace"]
    records_ns = config["reconcilers"][0]["options"]["recordNamespace"]
    with ControlPlane() as plane, tempfile.TemporaryDirectory(prefix="informerd-demo-") as workdir:
        _say(f"control plane up: {plane.server}  KUBECONFIG={plane.admin_kubeconfig}")
        install_crd(plane)
        for ns in (namespace, records_ns):
            create_namespace(plane, ns)
        _say(f"CRD backups.{BACKUPS.group} installed; namespaces {namespace}, {records_ns} created")
        daemon = DaemonProcess(config, plane.admin_kubeconfig, workdir, name="informerd")
        with daemon:
            _say(
                f"$ informerd run --config {config_path.name} (metrics :{daemon.metrics_port}, probes :{daemon.probe_port})"
            )
            ready_after = daemon.wait_ready(120)
            _say(f"/readyz 200 after {ready_after:.2f} s; daemon RSS {_rss_mib(daemon.pid):.1f} MiB (idle, synced)")

            uids = {
                n: plane.request_json("POST", BACKUPS.path(namespace), backup_manifest(n, source=f"{n}-data"))[
                    "metadata"
                ]["uid"]
                for n in ("nightly", "weekly", "hourly")
            }
            _say("created Backups nightly, weekly, hourly")
            wait_for(lambda: len(plane.request_json("GET", JOBS.path(namespace))["items"]) == 3, 60, "a Job per Backup")
            wait_for(lambda: all(_progressing(plane, namespace, n) for n in uids), 60, "every Backup Progressing")
            _show_backups(plane, namespace)
            for uid in uids.values():
                succeed_job(plane, namespace, job_name(uid, 1))
            _say("Jobs reported succeeded (status patched; no kubelet runs here)")
            wait_for(lambda: all(_ready_at(plane, namespace, n, 1) for n in uids), 60, "every Backup Ready")
            _show_backups(plane, namespace)

            plane.request(
                "PATCH",
                BACKUPS.path(namespace, "nightly"),
                {"spec": {"trigger": "again"}},
                content_type="application/merge-patch+json",
            )
            _say("updated nightly's spec (generation 2): a second Job")
            wait_for(
                lambda: len(plane.request_json("GET", JOBS.path(namespace))["items"]) == 4, 60, "the generation-2 Job"
            )
            succeed_job(plane, namespace, job_name(uids["nightly"], 2))
            wait_for(lambda: _ready_at(plane, namespace, "nightly", 2), 60, "nightly Ready at generation 2")
            plane.request("DELETE", BACKUPS.path(namespace, "hourly"))
            _say("deleted hourly: its finalizer deletes its record")
            wait_for(
                lambda: record_name(uids["hourly"]) not in _records(plane, records_ns), 60, "hourly's record deleted"
            )
            wait_for(
                lambda: all(
                    b["metadata"]["name"] != "hourly"
                    for b in plane.request_json("GET", BACKUPS.path(namespace))["items"]
                ),
                60,
                "hourly gone",
            )

            _say("\nBackups:")
            _show_backups(plane, namespace)
            _say("Jobs (one per Backup UID and generation):")
            _show_jobs(plane, namespace)
            _say(f"Records in {records_ns}: {', '.join(_records(plane, records_ns))}")
            _, metrics = daemon.metrics()
            _say("\n/metrics (excerpt):")
            for line in metrics.splitlines():
                if line.startswith(EXCERPT) and not line.endswith(" 0.0"):
                    _say(f"  {line}")
            status, body = daemon.probe("/readyz?verbose")
            _say(f"\n/readyz?verbose -> {status}")
            for line in body.splitlines():
                _say(f"  {line}")
            notes = [e for e in daemon.logs() if e.get("event") == "notification"]
            _say(f"\nevent-log plugin: {len(notes)} log lines, e.g. {notes[-1] if notes else None}")
            started = time.monotonic()
            code = daemon.stop(signal.SIGTERM, timeout=60)
            _say(f"\nSIGTERM -> informerd exited with code {code} after {time.monotonic() - started:.2f} s")
    _say("demo stopped")
    return 0 if code == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backup_controller.demo", description=__doc__)
    parser.add_argument("--config", type=Path, default=CONFIG, help="the daemon config (default: the example's)")
    args = parser.parse_args(argv)
    return run_demo(args.config)


if __name__ == "__main__":
    sys.exit(main())
