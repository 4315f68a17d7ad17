"""Shared helpers of the informer integration tests: clients, server truth, waiting, event logs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from informers.client import ApiClient
from informers.config import load_config
from informers.events import Notification, ObjectAdded, ObjectDeleted, ObjectUpdated
from informers.informer import SharedInformer
from informers.objects import object_key
from informers.testing import ControlPlane


@contextmanager
def api_client(kubeconfig: Path | str, **options: Any) -> Iterator[ApiClient]:
    client = ApiClient(load_config(str(kubeconfig), **options))
    try:
        yield client
    finally:
        client.close()


def server_state(plane: ControlPlane, path: str) -> dict[str, str]:
    """{key: resourceVersion} of every object at ``path``, read from the apiserver as admin."""
    body = plane.request_json("GET", path)
    return {object_key(o): o["metadata"]["resourceVersion"] for o in body["items"]}


def cache_state(informer: SharedInformer) -> dict[str, str]:
    return {object_key(o): o["metadata"]["resourceVersion"] for o in informer.store.list()}


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def wait_states_equal(
    server: Callable[[], Mapping[str, Any]], cache: Callable[[], Mapping[str, Any]], timeout: float
) -> Mapping[str, Any]:
    """Wait until ``cache()`` equals ``server()`` (key -> whatever is compared); return the server's.
    On timeout the error names up to ten missing, extra and differing keys."""
    last: dict[str, Mapping[str, Any]] = {}

    def equal() -> bool:
        last["server"], last["cache"] = server(), cache()
        return last["server"] == last["cache"]

    try:
        wait_for(equal, timeout, "cache == server", interval=0.2)
    except AssertionError:
        want, got = last["server"], last["cache"]
        missing = sorted(set(want) - set(got))[:10]
        extra = sorted(set(got) - set(want))[:10]
        differ = sorted(k for k in set(want) & set(got) if want[k] != got[k])[:10]
        raise AssertionError(f"cache != server: missing={missing} extra={extra} differ={differ}") from None
    return last["server"]


def wait_cache_equals_server(informer: SharedInformer, plane: ControlPlane, path: str, timeout: float = 30) -> None:
    """The test's closing assertion: the cache ends equal to the server's list."""
    wait_states_equal(lambda: server_state(plane, path), lambda: cache_state(informer), timeout)


class EventLog:
    """A thread-safe recorder usable as an ``on_notification`` handler."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.notes: list[Notification] = []

    def __call__(self, note: Notification) -> None:
        with self._lock:
            self.notes.append(note)

    def snapshot(self) -> list[Notification]:
        with self._lock:
            return list(self.notes)

    def writes(self) -> list[tuple[str, str, str | None]]:
        """Non-initial, non-resync notifications as (type, name, resourceVersion; None for deletes),
        comparable with ``Churn.written``."""
        out: list[tuple[str, str, str | None]] = []
        for note in self.snapshot():
            if isinstance(note, ObjectAdded) and not note.in_initial_list:
                out.append(("ADDED", note.obj["metadata"]["name"], note.obj["metadata"]["resourceVersion"]))
            elif isinstance(note, ObjectUpdated) and not note.is_resync:
                out.append(("MODIFIED", note.new["metadata"]["name"], note.new["metadata"]["resourceVersion"]))
            elif isinstance(note, ObjectDeleted) and not note.final_state_unknown:
                out.append(("DELETED", note.last_state["metadata"]["name"], None))
        return out

    def tombstones(self) -> list[str]:
        return [n.key for n in self.snapshot() if isinstance(n, ObjectDeleted) and n.final_state_unknown]


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
