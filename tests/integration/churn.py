"""A writer that creates, updates and deletes objects and records the resourceVersion of each write."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import urllib3

from informers.testing import ControlPlane, ControlPlaneError

from .support import configmap


def create_configmaps(plane: ControlPlane, namespace: str, count: int, prefix: str = "cm", workers: int = 4) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with ThreadPoolExecutor(workers) as pool:
        list(
            pool.map(lambda i: plane.request_json("POST", path, configmap(f"{prefix}-{i:05d}", i=str(i))), range(count))
        )


def podtemplate(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": {"name": name, "labels": labels},
        "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}},
    }


def create_podtemplates(plane: ControlPlane, namespace: str, count: int, prefix: str = "pt", workers: int = 4) -> None:
    path = f"/api/v1/namespaces/{namespace}/podtemplates"
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda i: plane.request_json("POST", path, podtemplate(f"{prefix}-{i:05d}")), range(count)))


class Churn:
    """Random writes to ConfigMaps in one namespace, one at a time.

    ``written`` lists every successful write as (type, name, resourceVersion or None for deletes),
    in order: what a watcher of the namespace must see, exactly once each.
    """

    def __init__(self, plane: ControlPlane, namespace: str, *, seed: int = 7, prefix: str = "churn") -> None:
        self.plane = plane
        self.path = f"/api/v1/namespaces/{namespace}/configmaps"
        self.rng = random.Random(seed)
        self.prefix = prefix
        self.live: set[str] = set()
        self.written: list[tuple[str, str, str | None]] = []
        self.failed_writes = 0
        self._n = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> None:
        roll = self.rng.random()
        try:
            if not self.live or roll < 0.4:
                name = f"{self.prefix}-{self._n}"
                self._n += 1
                obj = self.plane.request_json("POST", self.path, configmap(name, v="0"))
                self.live.add(name)
                self.written.append(("ADDED", name, obj["metadata"]["resourceVersion"]))
            elif roll < 0.8:
                name = self.rng.choice(sorted(self.live))
                obj = self._update(name)
                self.written.append(("MODIFIED", name, obj["metadata"]["resourceVersion"]))
            else:
                name = self.rng.choice(sorted(self.live))
                self.plane.request_json("DELETE", f"{self.path}/{name}")
                self.live.discard(name)
                # a DELETE answers with a Status, not the object: the deletion's RV is not known here
                self.written.append(("DELETED", name, None))
        except (ControlPlaneError, OSError, urllib3.exceptions.HTTPError):
            self.failed_writes += 1  # e.g. during an apiserver restart: not written, not expected

    def _update(self, name: str) -> dict[str, Any]:
        obj = self.plane.request_json("GET", f"{self.path}/{name}")
        obj["data"] = {"v": str(self._n)}
        self._n += 1
        return self.plane.request_json("PUT", f"{self.path}/{name}", obj)

    def run(self, steps: int) -> None:
        for _ in range(steps):
            if self._stop.is_set():
                return
            self.step()

    def start(self, interval: float = 0.01) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                self.step()
                self._stop.wait(interval)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
