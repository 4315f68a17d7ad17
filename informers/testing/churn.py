"""A seeded writer for tests and benchmarks: creates, updates, deletes and delete + re-create under
one name, straight to a ``ControlPlane`` as admin, on one thread.

It never needs to know the outcome of a write exactly (callers compare caches with the server's own
list); it counts what it did and remembers every UID it deleted (a write that failed because the
apiserver was down is counted, not retried). The names form a small fixed space (``o-0`` ..
``o-<names-1>`` per collection), so re-creates under an old name happen often, ``populate()`` fills
it and ``restore()`` fills it again: the object count then equals the starting one.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import urllib3

if TYPE_CHECKING:
    from .controlplane import ControlPlane

__all__ = ["Body", "ChurnWriter", "configmap_body", "podtemplate_body"]

Body = Callable[[str, int], dict[str, Any]]
"""A factory of an object's body from its name and the writer's step number."""


def configmap_body(name: str, n: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"half": str(n % 2)}},
        "data": {"v": str(n)},
    }


def podtemplate_body(name: str, n: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": {"name": name, "labels": {"half": str(n % 2)}},
        "template": {"metadata": {"labels": {"v": str(n)}}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
    }


def _write_errors() -> tuple[type[BaseException], ...]:
    from .controlplane import ControlPlaneError

    return (ControlPlaneError, OSError, urllib3.exceptions.HTTPError)


class ChurnWriter:
    """Writes to several collections (``paths`` -> body factory) until stopped."""

    def __init__(
        self,
        plane: ControlPlane,
        paths: dict[str, Body],
        rng: random.Random,
        *,
        names: int = 40,
        track_deleted: bool = True,
    ) -> None:
        """``track_deleted=False`` keeps no deleted UIDs (a long soak must not grow by design)."""
        self.plane = plane
        self.paths = paths
        self.rng = rng
        self.names = names  # a small name space: re-creates under an old name happen often
        self.ops: Counter[str] = Counter()
        self.deleted_uids: set[str] = set()
        self._track_deleted = track_deleted
        self._live: dict[tuple[str, str], str] = {}  # (path, name) -> uid
        self._n = 0
        self._errors = _write_errors()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> None:
        path = self.rng.choice(sorted(self.paths))
        name = f"o-{self.rng.randrange(self.names)}"
        roll = self.rng.random()
        self._n += 1
        try:
            uid = self._live.get((path, name))
            if uid is None:
                self._create(path, name)
            elif roll < 0.55:
                self._update(path, name)
            elif roll < 0.8:
                self._delete(path, name, uid)
            else:  # delete + re-create under one name: two UIDs, back to back
                self._delete(path, name, uid)
                self._create(path, name)
                self.ops["recreate"] += 1
        except self._errors:
            self.ops["failed"] += 1  # e.g. the apiserver is restarting: the next read resyncs us
            self._resync(path, name)

    def populate(self) -> None:
        """Create every name of every collection (the starting population)."""
        self.restore()

    def restore(self) -> int:
        """Create every name missing on the server (read from its list, not from memory), so the
        count is back to ``names`` per collection; returns how many were created."""
        created = 0
        for path in sorted(self.paths):
            items = self.plane.request_json("GET", path)["items"]
            present = {o["metadata"]["name"]: o["metadata"]["uid"] for o in items}
            for key in [k for k in self._live if k[0] == path and k[1] not in present]:
                self._deleted(self._live.pop(key))
            for i in range(self.names):
                name = f"o-{i}"
                if name in present:
                    old = self._live.get((path, name))
                    if old is not None and old != present[name]:
                        self._deleted(old)
                    self._live[(path, name)] = present[name]
                else:
                    self._n += 1
                    self._create(path, name)
                    created += 1
        return created

    def _create(self, path: str, name: str) -> None:
        obj = self.plane.request_json("POST", path, self.paths[path](name, self._n))
        self._live[(path, name)] = obj["metadata"]["uid"]
        self.ops["create"] += 1

    def _update(self, path: str, name: str) -> None:
        obj = self.plane.request_json("GET", f"{path}/{name}")
        obj.update({k: v for k, v in self.paths[path](name, self._n).items() if k not in ("metadata",)})
        obj["metadata"]["labels"] = {"half": str(self._n % 2)}  # moves objects in and out of a selector
        self.plane.request_json("PUT", f"{path}/{name}", obj)
        self.ops["update"] += 1

    def _delete(self, path: str, name: str, uid: str) -> None:
        self.plane.request_json("DELETE", f"{path}/{name}")
        self._live.pop((path, name), None)
        self._deleted(uid)
        self.ops["delete"] += 1

    def _resync(self, path: str, name: str) -> None:
        """After a failed write, learn the truth of that one name (the write may have happened)."""
        try:
            status, _ = self.plane.request("GET", f"{path}/{name}")
            if status == 404:
                uid = self._live.pop((path, name), None)
                if uid is not None:
                    self._deleted(uid)
            elif status == 200:
                obj = self.plane.request_json("GET", f"{path}/{name}")
                old = self._live.get((path, name))
                if old is not None and old != obj["metadata"]["uid"]:
                    self._deleted(old)
                self._live[(path, name)] = obj["metadata"]["uid"]
        except self._errors:
            self._live.pop((path, name), None)  # unknown: the next step on it re-reads

    def _deleted(self, uid: str) -> None:
        if self._track_deleted:
            self.deleted_uids.add(uid)

    def start(self, interval: float) -> None:
        """Write from a thread of its own, one step every ``interval`` seconds, until ``stop()``."""
        self._stop.clear()

        def loop() -> None:
            while not self._stop.is_set():
                self.step()
                self._stop.wait(interval)

        self._thread = threading.Thread(target=loop, name="churn-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)
            self._thread = None

    @property
    def writes(self) -> int:
        return sum(v for k, v in self.ops.items() if k in ("create", "update", "delete"))
