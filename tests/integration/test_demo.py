"""The README's demo command (``make demo`` = ``python -m backup_controller.demo``) runs end to end:
control plane up, ``informerd run`` ready, Backups reconciled (status, Jobs, records), a
``/metrics`` excerpt and ``/readyz``, and a clean exit on SIGTERM. Also the informer-only demo of
the kit (``python -m informers.testing demo``)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_make_demo_shows_the_daemon_reconciling_backups_and_stopping_cleanly():
    proc = subprocess.run([sys.executable, "-m", "backup_controller.demo"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    lines = out.splitlines()
    assert lines[0].startswith("control plane up: https://127.0.0.1:")
    assert any(line.startswith("$ informerd run --config config.yaml") for line in lines)
    assert re.search(r"^/readyz 200 after \d+\.\d+ s; daemon RSS \d+\.\d MiB", out, re.M)
    # The final table: nightly at generation 2 and weekly at 1, both Ready; hourly deleted.
    final = out.split("\nBackups:\n", 1)[1].split("Jobs (one per", 1)[0]
    rows = {line.split()[0]: line.split() for line in final.splitlines()[1:]}
    assert set(rows) == {"nightly", "weekly"}
    assert rows["nightly"][1:4] == ["2", "2", "True/BackupComplete"]
    assert rows["weekly"][1:4] == ["1", "1", "True/BackupComplete"]
    jobs = [line for line in lines if line.startswith("  job backup-")]
    assert len(jobs) == 4 and all("owner=Backup/" in j and "succeeded=1" in j for j in jobs)
    assert sum("owner=Backup/nightly" in j for j in jobs) == 2
    records = next(line for line in lines if line.startswith("Records in "))
    assert len(records.split(": ", 1)[1].split(", ")) == 2
    excerpt = out.split("/metrics (excerpt):\n", 1)[1].split("\n\n", 1)[0]
    assert re.search(r'controller_runtime_reconcile_total\{controller="backup",result="success"\} [1-9]', excerpt)
    assert "workqueue_adds_total" in excerpt and "rest_client_requests_total" in excerpt
    assert "/readyz?verbose -> 200" in out and "  healthz check passed" in lines
    assert "SIGTERM -> informerd exited with code 0" in out
    assert lines[-1] == "demo stopped"


def test_the_kits_informer_demo_prints_events_for_the_objects_it_creates():
    proc = subprocess.run(
        [sys.executable, "-m", "informers.testing", "demo", "--rounds", "3"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert any(line.startswith("informer synced") for line in lines)
    assert sum(line.startswith("event added") for line in lines) == 3
    assert sum(line.startswith("event updated") for line in lines) == 3
    assert sum(line.startswith("event deleted") for line in lines) == 1
    assert lines[-1] == "demo stopped"
