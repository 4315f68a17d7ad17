"""The README's demo command runs end to end: control plane up, informer synced, events printed."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_demo_prints_events_for_the_objects_it_creates():
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
