"""Child processes for the kit: started with output to a log file, stopped for sure.

On Linux each child gets ``PR_SET_PDEATHSIG=SIGKILL``, so a killed test run does not leave etcd or
kube-apiserver behind. The kernel ties that signal to the *thread* that forked the child, not the
process, so every child is forked by one long-lived spawner thread: a control plane restarted
from a short-lived thread (as users' test suites do) lives as long as the process.
Invariant: ``stop()`` returns only once the process has exited.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from ..errors import InformerdError

__all__ = ["ManagedProcess", "ProcessExitedError"]


class ProcessExitedError(InformerdError, RuntimeError):
    """A child exited while we waited for it to become ready."""


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
        except OSError:
            pass


class _Spawner:
    """One daemon thread that forks every child, so their death signal follows the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def run(self, fn: Callable[[], Any]) -> Any:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="testing-kit-spawner", daemon=True)
                self._thread.start()
        future: Future[Any] = Future()
        self._jobs.put((fn, future))
        return future.result()

    def _loop(self) -> None:
        while True:
            fn, future = self._jobs.get()
            try:
                future.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                future.set_exception(exc)


_SPAWNER = _Spawner()


class ManagedProcess:
    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        if self.running:
            return
        log = self.log_path.open("ab")
        try:
            self._proc = _SPAWNER.run(
                lambda: subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, **(self.env or {})},
                    preexec_fn=_die_with_parent,
                )
            )
        finally:
            log.close()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def check_alive(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            raise ProcessExitedError(
                f"{self.name} exited with code {self._proc.returncode}; log tail:\n{self.log_tail()}"
            )

    def log_tail(self, size: int = 4000) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return "(no log)"
        return data[-size:].decode(errors="replace")

    def stop(self, timeout: float = 15.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), like a crash."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
