"""Driving ``informerd run`` against a control plane: what the demo and the end-to-end tests share.

``install_crd`` applies the Backup CRD and waits until the apiserver serves it; ``DaemonProcess``
runs ``informerd run`` as a subprocess with a config file (metrics and probes on free loopback
ports, JSON logs to a file) and reads its endpoints; the rest are small admin requests
(``plane`` is an ``informers.testing.ControlPlane``, or anything with its ``request``/``request_json``).
Invariant: a ``DaemonProcess`` left running is killed when it is closed; nothing here sleeps
longer than one poll interval between checks of what it waits for.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
import yaml

from .names import BACKUPS, JOBS, crd

__all__ = [
    "DaemonProcess",
    "backup_manifest",
    "create_namespace",
    "free_port",
    "http_get",
    "install_crd",
    "succeed_job",
    "wait_for",
]

_POLL = 0.05


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll until ``condition()`` is truthy and return it; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(_POLL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(url: str, timeout: float = 10.0) -> tuple[int, str]:
    """(status, body); connection failures are status 0."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode()
    except (OSError, urllib.error.URLError) as error:
        return 0, str(error)


def install_crd(plane: Any, timeout: float = 60.0) -> None:
    """Create the Backup CRD (if missing) and wait until it is Established and served."""
    status, body = plane.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd())
    if status not in (201, 409):
        raise RuntimeError(f"creating the Backup CRD: HTTP {status}: {body[:300]!r}")
    name = crd()["metadata"]["name"]

    def served() -> bool:
        got = plane.request_json("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        # A CRD just created may carry ``"conditions": null`` until the apiserver's controllers see it.
        conditions = {c["type"]: c["status"] for c in (got.get("status") or {}).get("conditions") or []}
        if conditions.get("Established") != "True":
            return False
        status, _ = plane.request("GET", BACKUPS.path("default"))
        return bool(status == 200)

    wait_for(served, timeout, "the Backup CRD to be served")


def create_namespace(plane: Any, name: str) -> None:
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    status, data = plane.request("POST", "/api/v1/namespaces", body)
    if status not in (201, 409):
        raise RuntimeError(f"creating namespace {name}: HTTP {status}: {data[:300]!r}")


def backup_manifest(name: str, source: str = "db", kind: str = "PersistentVolumeClaim") -> dict[str, Any]:
    return {
        "apiVersion": f"{BACKUPS.group}/{BACKUPS.version}",
        "kind": "Backup",
        "metadata": {"name": name},
        "spec": {"source": {"kind": kind, "name": source}},
    }


def succeed_job(plane: Any, namespace: str, name: str) -> None:
    """What a kubelet and the Job controller would report: the Job succeeded (no kubelet runs here)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    status = {
        "startTime": now,
        "completionTime": now,
        "succeeded": 1,
        "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now, "lastProbeTime": now},
            {"type": "Complete", "status": "True", "lastTransitionTime": now, "lastProbeTime": now},
        ],
    }
    path = JOBS.path(namespace, name, "status")
    got, body = plane.request("PATCH", path, {"status": status}, content_type="application/merge-patch+json")
    if got != 200:
        raise RuntimeError(f"patching {path}: HTTP {got}: {body[:300]!r}")


def _command() -> list[str]:
    script = Path(sys.executable).with_name("informerd")
    if script.exists():
        return [str(script)]
    found = shutil.which("informerd")
    return [found] if found else [sys.executable, "-m", "controllers.cli"]


class DaemonProcess:
    """``informerd run --config <workdir>/<name>.yaml`` as a subprocess (see the module docstring)."""

    def __init__(
        self,
        config: dict[str, Any],
        kubeconfig: str | Path,
        workdir: str | Path,
        *,
        name: str = "informerd",
        args: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.workdir = Path(workdir)
        self.config_path = self.workdir / f"{name}.yaml"
        self.log_path = self.workdir / f"{name}.log"
        self.kubeconfig = str(kubeconfig)
        self.metrics_port = free_port()
        self.probe_port = free_port()
        self.args = list(args)
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @property
    def command(self) -> list[str]:
        return [
            *_command(),
            "--log-format",
            "json",
            "run",
            "--config",
            str(self.config_path),
            "--kubeconfig",
            self.kubeconfig,
            "--metrics-bind-address",
            f"127.0.0.1:{self.metrics_port}",
            "--health-probe-bind-address",
            f"127.0.0.1:{self.probe_port}",
            *self.args,
        ]

    def start(self) -> DaemonProcess:
        with self.log_path.open("ab") as log:
            self.started_at = time.monotonic()
            self.proc = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
        return self

    def __enter__(self) -> DaemonProcess:
        return self.start()

    def __exit__(self, *exc: object | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def probe(self, path: str) -> tuple[int, str]:
        return http_get(f"http://127.0.0.1:{self.probe_port}{path}")

    def metrics(self) -> tuple[int, str]:
        return http_get(f"http://127.0.0.1:{self.metrics_port}/metrics")

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Wait for ``/readyz`` to answer 200; returns the seconds since ``start``."""

        def ready() -> bool:
            if not self.running():
                raise AssertionError(f"{self.name} exited with {self.returncode()}:\n{self.log_tail()}")
            return self.probe("/readyz")[0] == 200

        wait_for(ready, timeout, f"{self.name} /readyz 200")
        return time.monotonic() - self.started_at

    def send_signal(self, signum: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Send ``signum`` and wait for the exit code."""
        self.send_signal(signum)
        assert self.proc is not None
        return self.proc.wait(timeout)

    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def logs(self) -> list[dict[str, Any]]:
        """The JSON log lines so far (anything else is skipped)."""
        entries = []
        for line in self.log_path.read_bytes().splitlines():
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(entry, dict):
                entries.append(entry)
        return entries

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
