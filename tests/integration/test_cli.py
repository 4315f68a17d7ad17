"""``informerd watch`` against the real apiserver: JSON lines for the initial list and live changes,
JSON logs on stderr, a clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import orjson
import pytest

from informers.testing import ControlPlane

pytestmark = pytest.mark.integration


def test_informerd_watch_prints_events_and_stops_on_sigterm(control_plane: ControlPlane, namespace: str):
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    control_plane.request_json("POST", path, {"metadata": {"name": "before"}})
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "controllers.cli",
            "watch",
            "v1/configmaps",
            "-n",
            namespace,
            "--kubeconfig",
            str(control_plane.admin_kubeconfig),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ},
    )
    try:
        first = orjson.loads(proc.stdout.readline())
        assert first["type"] == "added" and first["initial"] and first["object"]["metadata"]["name"] == "before"
        assert "managedFields" not in first["object"]["metadata"]
        control_plane.request_json("POST", path, {"metadata": {"name": "after"}})
        second = orjson.loads(proc.stdout.readline())
        assert second["type"] == "added" and not second["initial"] and second["object"]["metadata"]["name"] == "after"
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        logs = [orjson.loads(line) for line in proc.stderr.read().splitlines() if line.strip()]
        assert any(entry.get("event") == "informer synced" for entry in logs)  # structured JSON logs
    finally:
        if proc.poll() is None:
            proc.kill()


def test_informerd_version():
    out = subprocess.run(
        [sys.executable, "-m", "controllers.cli", "version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "0.1.0"
