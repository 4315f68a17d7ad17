"""Used as a library, informerd writes nothing to the terminal unless the application configured
logging; when it did (stdlib ``logging`` or structlog), the lines arrive there."""

from __future__ import annotations

import subprocess
import sys

_TRIGGER = """
from informers.store import Store
store = Store({"team": lambda obj: [obj["metadata"]["labels"]["team"]]})
store.upsert({"metadata": {"name": "a", "namespace": "ns", "uid": "u", "resourceVersion": "1"}})
assert store.statistics().index_errors == 1
"""


def _run(prelude: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", prelude + _TRIGGER], capture_output=True, text=True, timeout=60)


def test_nothing_is_printed_when_the_application_configured_no_logging():
    proc = _run("")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""


def test_stdlib_logging_receives_the_records_once_configured():
    proc = _run(
        "import logging; logging.basicConfig(level=logging.INFO, format='%(name)s %(levelname)s %(message)s')\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert "informers.store ERROR index function failed; object stored without this index" in proc.stderr
    assert "index='team'" in proc.stderr and "key='ns/a'" in proc.stderr


def test_a_structlog_configuration_takes_over():
    proc = _run("import structlog; structlog.configure(processors=[structlog.processors.JSONRenderer()])\n")
    assert proc.returncode == 0, proc.stderr
    assert '"event": "index function failed; object stored without this index"' in proc.stdout
    assert '"index": "team"' in proc.stdout
