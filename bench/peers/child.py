"""What every Python peer child shares: its argv, its result channel, and what it measures.

A child is started by the driver (``bench/peers/driver.py``) with the arguments of ``parser()``,
caches every pod of the cluster, and writes JSON lines on its real stdout, in this order:

* ``synced``: ``sync_s`` (start -> the peer's own "synced"), ``cpu_sync_s`` (process CPU over the
  same span), ``objects`` cached, ``rss_base_kb`` (VmRSS after imports and client setup, after a
  GC), ``rss_kb`` (VmRSS after sync and a GC), ``peak_rss_kb`` (VmHWM);
* ``initial`` (controllers only): every one of ``--expect`` pods reconciled once after start;
* ``events``: after the driver patched ``--updates`` pods with a ``bench-tick`` label starting with
  ``--token``: how many the handler (or reconciler) saw, the first/last time, the CPU spent since
  the previous line, and ``latencies_ms`` write -> handler (or reconcile start), the write time
  being the pod's ``bench.informerd.io/written`` annotation (unix seconds, one machine's clock).

Go peers print the same lines (``bench/clientgo``, ``bench/controllerruntime``). Invariant: stdout
carries only these lines; anything a library prints goes to stderr (the driver's log).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import threading
import time
from typing import IO, Any

TICK_LABEL = "bench-tick"
WRITTEN_ANNOTATION = "bench.informerd.io/written"


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--qps", type=float, default=5.0)
    p.add_argument("--burst", type=int, default=10)
    p.add_argument("--expect", type=int, default=0, help="pods in the cluster")
    p.add_argument("--updates", type=int, default=0, help="patched pods to wait for")
    p.add_argument("--token", default="", help="bench-tick label prefix of this run's patches")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per phase")
    p.add_argument("--workers", type=int, default=1, help="concurrent reconciles (controllers)")
    return p


def proc_status_kb(name: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{name} not in /proc/self/status")


def cpu_seconds() -> float:
    return time.process_time()  # every thread of the process


class Channel:
    """The real stdout, kept for the protocol; fd 1 is pointed at stderr so prints land in the log."""

    def __init__(self) -> None:
        self._out: IO[str] = os.fdopen(os.dup(1), "w", buffering=1)
        os.dup2(2, 1)
        self._lock = threading.Lock()

    def emit(self, phase: str, **fields: Any) -> None:
        with self._lock:
            self._out.write(json.dumps({"phase": phase, **fields}) + "\n")
            self._out.flush()


def baseline() -> int:
    """VmRSS after a GC: what the process holds before caching anything."""
    gc.collect()
    return proc_status_kb("VmRSS")


def synced_fields(started: float, cpu_start: float, objects: int, rss_base_kb: int) -> dict[str, Any]:
    sync_s = time.perf_counter() - started
    cpu_sync_s = cpu_seconds() - cpu_start
    gc.collect()
    return {
        "sync_s": sync_s,
        "cpu_sync_s": cpu_sync_s,
        "objects": objects,
        "rss_base_kb": rss_base_kb,
        "rss_kb": proc_status_kb("VmRSS"),
        "peak_rss_kb": proc_status_kb("VmHWM"),
    }


def written_at(annotations: dict[str, str] | None) -> float:
    try:
        return float((annotations or {}).get(WRITTEN_ANNOTATION, "0"))
    except ValueError:
        return 0.0


class Tracker:
    """Distinct keys seen, and distinct keys seen carrying this run's token (with latencies).

    Thread-safe: informer handlers, worker threads and event loops all call ``see``.
    ``initial`` is set when ``expect`` keys were seen, ``done`` when ``want`` token keys were.
    """

    def __init__(self, token: str, expect: int, want: int) -> None:
        self.token, self.expect, self.want = token, expect, want
        self._lock = threading.Lock()
        self.seen: set[str] = set()
        self.ticked: set[str] = set()
        self.calls = 0
        self.latencies_ms: list[float] = []
        self.first = self.last = 0.0
        self.initial = threading.Event()
        self.done = threading.Event()
        if expect <= 0:
            self.initial.set()
        if want <= 0:
            self.done.set()

    def see(self, key: str, labels: dict[str, str] | None, annotations: dict[str, str] | None) -> None:
        now = time.time()
        with self._lock:
            self.calls += 1
            if key not in self.seen:
                self.seen.add(key)
                if len(self.seen) == self.expect:
                    self.initial.set()
            tick = (labels or {}).get(TICK_LABEL, "")
            if not self.token or not tick.startswith(self.token) or key in self.ticked:
                return
            self.ticked.add(key)
            written = written_at(annotations)
            if written > 0:
                self.latencies_ms.append((now - written) * 1000)
            if not self.first:
                self.first = now
            self.last = time.time()
            if len(self.ticked) == self.want:
                self.done.set()

    def initial_fields(self, started: float, cpu_start: float) -> dict[str, Any]:
        with self._lock:
            return {
                "reconciled": len(self.seen),
                "reconciles": self.calls,
                "seconds": time.perf_counter() - started,
                "cpu_s": cpu_seconds() - cpu_start,
                "peak_rss_kb": proc_status_kb("VmHWM"),
                "timed_out": len(self.seen) < self.expect,
            }

    def events_fields(self, cpu0: float) -> dict[str, Any]:
        with self._lock:
            return {
                "events": len(self.ticked),
                "first_event_t": self.first,
                "last_event_t": self.last,
                "cpu_s": cpu_seconds() - cpu0,
                "latencies_ms": list(self.latencies_ms),
                "timed_out": len(self.ticked) < self.want,
                "peak_rss_kb": proc_status_kb("VmHWM"),
            }
