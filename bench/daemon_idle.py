"""The daemon at rest: ``informerd run`` with the example config (examples/backup-controller) on a
local control plane; per run, the seconds from spawning the process to ``/readyz`` 200, and its
resident memory (VmRSS, VmHWM) after it has idled ``--idle`` seconds synced. Medians of ``--runs``.

    .venv/bin/python bench/daemon_idle.py [--runs 3] [--idle 10] [--backups 0]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import yaml
from backup_controller.demo import CONFIG
from backup_controller.kit import DaemonProcess, backup_manifest, create_namespace, install_crd, wait_for
from backup_controller.names import BACKUPS

from informers.testing import ControlPlane


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds synced before reading RSS")
    parser.add_argument("--backups", type=int, default=0, help="Backups created before the daemon starts")
    args = parser.parse_args()
    config = yaml.safe_load(CONFIG.read_text())
    ready, rss, hwm = [], [], []
    with ControlPlane() as plane, tempfile.TemporaryDirectory() as workdir:
        install_crd(plane)
        for ns in (config["namespace"], config["reconcilers"][0]["options"]["recordNamespace"]):
            create_namespace(plane, ns)
        for i in range(args.backups):
            plane.request_json("POST", BACKUPS.path(config["namespace"]), backup_manifest(f"b{i}"))
        for run in range(args.runs):
            with DaemonProcess(config, plane.admin_kubeconfig, workdir, name=f"run{run}") as daemon:
                ready.append(daemon.wait_ready(120))
                time.sleep(args.idle)
                wait_for(lambda d=daemon: d.probe("/readyz")[0] == 200, 30, "still ready")
                rss.append(_kib(daemon.pid, "VmRSS") / 1024)
                hwm.append(_kib(daemon.pid, "VmHWM") / 1024)
                assert daemon.stop(timeout=60) == 0
            print(
                f"run {run}: /readyz 200 after {ready[-1]:.2f} s; RSS {rss[-1]:.1f} MiB (peak {hwm[-1]:.1f})",
                flush=True,
            )
    print(
        f"median of {args.runs}: start -> /readyz 200 {statistics.median(ready):.2f} s; "
        f"idle RSS {statistics.median(rss):.1f} MiB (peak {statistics.median(hwm):.1f} MiB); "
        f"{args.backups} Backups cached",
        flush=True,
    )


if __name__ == "__main__":
    main()
