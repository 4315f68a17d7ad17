"""``informerd`` as a subprocess for the daemon's tests: a test-only plugin distribution it discovers
through entry points, its JSON log lines collected as they come, its servers' ports read from its
logs, and HTTP helpers for ``/metrics`` and the probes."""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import yaml
from prometheus_client.parser import text_string_to_metric_families

from . import robust_plugins

Scrape = dict[tuple[str, frozenset[tuple[str, str]]], float]


def write_plugin_distribution(root: Path) -> Path:
    """Write ``robust_plugins`` (this package's module) and a failing ``robust_broken`` into
    ``root`` with an ``informerd-robust-plugins-0.1.dist-info`` declaring their entry points;
    ``importlib.metadata`` finds it once ``root`` is on ``sys.path`` (``PYTHONPATH``)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "robust_plugins.py").write_text(inspect.getsource(robust_plugins))
    (root / "robust_broken.py").write_text(robust_plugins.BROKEN_MODULE)
    info = root / "informerd_robust_plugins-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: informerd-robust-plugins\nVersion: 0.1\n")
    sections = []
    for group, points in robust_plugins.ENTRY_POINTS.items():
        sections.append(f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in points.items()))
    (info / "entry_points.txt").write_text("\n".join(sections))
    return root


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def cli_env(plugin_root: Path | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFORMERD_")}
    if plugin_root is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(plugin_root), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def informerd(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run an ``informerd`` command to completion."""
    return subprocess.run(
        [sys.executable, "-m", "controllers.cli", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def fetch(url: str, method: str = "GET", timeout: float = 10) -> tuple[int, str]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def parse_scrape(text: str) -> Scrape:
    out: Scrape = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def total(scrape: Scrape, metric: str, /, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (name, ls), v in scrape.items() if name == metric and want <= ls)


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Daemon:
    """One ``informerd`` process; its stderr (JSON log lines) is read by a thread into ``logs``."""

    def __init__(self, args: Sequence[str], env: dict[str, str]) -> None:
        self.args = list(args)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "controllers.cli", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self._lock = threading.Lock()
        self.logs: list[dict[str, Any]] = []
        self.stdout: list[bytes] = []
        self._readers = [
            threading.Thread(target=self._read_logs, daemon=True),
            threading.Thread(target=self._read_stdout, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_logs(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            try:
                entry = orjson.loads(raw)
                if not isinstance(entry, dict):
                    entry = {"raw": raw.decode(errors="replace")}
            except orjson.JSONDecodeError:
                entry = {"raw": raw.decode(errors="replace")}
            with self._lock:
                self.logs.append(entry)

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.stdout.append(raw)

    def log_lines(self, **fields: Any) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.logs if all(e.get(k) == v for k, v in fields.items())]

    def wait_log(self, timeout: float = 60, **fields: Any) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            if self.proc.poll() is not None and not self.log_lines(**fields):
                raise AssertionError(f"informerd exited ({self.proc.returncode}) first; logs: {self.tail()}")
            lines = self.log_lines(**fields)
            return lines[0] if lines else None

        return wait_for(found, timeout, f"a log line {fields}")  # type: ignore[no-any-return]

    def tail(self, n: int = 20) -> list[dict[str, Any]]:
        with self._lock:
            return self.logs[-n:]

    def url(self, server: str, timeout: float = 60) -> str:
        """The base URL of ``metrics`` or ``probes``, from the daemon's ``serving`` log line."""
        return str(self.wait_log(timeout, event="serving", server=server)["address"])

    def scrape(self) -> Scrape:
        status, body = fetch(self.url("metrics") + "/metrics")
        assert status == 200, body
        return parse_scrape(body)

    def wait_ready(self, timeout: float = 90) -> None:
        url = self.url("probes", timeout) + "/readyz?verbose"
        wait_for(lambda: self.alive() and fetch(url)[0] == 200, timeout, "readyz 200")

    def alive(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"informerd exited with {self.proc.returncode}; last logs: {self.tail()}")
        return True

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        rc = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(5)
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@contextmanager
def running(args: Sequence[str], env: dict[str, str]) -> Iterator[Daemon]:
    daemon = Daemon(args, env)
    try:
        yield daemon
    finally:
        daemon.kill()
