"""The kit's child processes: their lifetime follows the process, not the thread that started them."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from informers.testing.processes import ManagedProcess


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only"
)  # allowed-skip: not a control-plane test
def test_a_child_started_from_a_thread_outlives_that_thread(tmp_path: Path):
    """Regression: PR_SET_PDEATHSIG is tied to the forking thread, so an apiserver restarted from a
    thread died when that thread ended."""
    child = ManagedProcess("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "log")
    starter = threading.Thread(target=child.start)
    starter.start()
    starter.join()
    try:
        time.sleep(0.5)  # the kernel's death signal would have arrived by now
        assert child.running
        child.check_alive()
    finally:
        child.stop(5)
    assert not child.running
