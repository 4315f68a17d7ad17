"""Shared parts of the controller integration tests: a Widget CRD, server reads, waiting, call logs.

A test module gets its own Widget CRD (a fresh API group, so modules never see each other's
objects) with a three-line module fixture over ``widget_crd``. Everything else here is plain helpers
that read the apiserver as admin or record what a reconciler saw; the reconcilers themselves live
in the test modules.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from hashlib import blake2b
from typing import Any

import anyio
import orjson

from controllers.controller import Controller
from controllers.ratelimit import RateLimiter
from controllers.reconciler import ReconcileContext
from controllers.request import Request
from controllers.writer import ApiWriter, WriterOptions
from informers.client import ApiClient
from informers.objects import controller_owner
from informers.resources import Resource
from informers.testing import ControlPlane

from .support import api_client, wait_for

CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", True)
FIELD_MANAGER = "widget-controller"


@contextmanager
def widget_crd(plane: ControlPlane) -> Iterator[Resource]:
    """A namespaced Widget CRD (status subresource, any fields) in a fresh group, served before it
    is yielded and deleted after."""
    group = f"ctl{blake2b(str(time.time_ns()).encode(), digest_size=4).hexdigest()}.example.com"
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }
    plane.request_json("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    wait_for(lambda: plane.request("GET", f"/apis/{group}/v1/widgets")[0] == 200, 30, "Widget CRD served")
    try:
        yield Resource(group, "v1", "widgets", "Widget", True)
    finally:
        plane.request("DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}")


# -- the server's truth (admin reads and writes, outside any controller) -------------------------


def create_widget(plane: ControlPlane, widgets: Resource, namespace: str, name: str, size: int = 1) -> dict[str, Any]:
    body = {"apiVersion": widgets.api_version, "kind": "Widget", "metadata": {"name": name}, "spec": {"size": size}}
    return plane.request_json("POST", widgets.path(namespace), body)


def patch_spec(plane: ControlPlane, widgets: Resource, namespace: str, name: str, size: int) -> dict[str, Any]:
    status, data = plane.request(
        "PATCH", widgets.path(namespace, name), {"spec": {"size": size}}, content_type="application/merge-patch+json"
    )
    assert status == 200, data[:300]
    return orjson.loads(data)


def get(plane: ControlPlane, path: str) -> dict[str, Any] | None:
    status, data = plane.request("GET", path)
    return orjson.loads(data) if status == 200 else None


def children_of(plane: ControlPlane, namespace: str, owner_uid: str) -> list[dict[str, Any]]:
    """The ConfigMaps in ``namespace`` whose controller owner has ``owner_uid``."""
    items = plane.request_json("GET", CONFIGMAPS.path(namespace))["items"]
    return [cm for cm in items if (controller_owner(cm) or {}).get("uid") == owner_uid]


# -- running a controller ---------------------------------------------------------------------


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    await anyio.to_thread.run_sync(wait_for, condition, timeout, what)


async def run_until(controller: Controller, body: Callable[[], Any]) -> None:
    """Run ``controller`` until ``body()`` returns, then stop it (in-flight calls drain)."""
    async with anyio.create_task_group() as group:
        group.start_soon(controller.run)
        assert await controller.wait_synced(30), "controller caches did not sync"
        await body()
        group.cancel_scope.cancel()


def client_for(plane: ControlPlane) -> Any:
    return api_client(plane.admin_kubeconfig, qps=-1)  # no client-side throttling in tests


@contextmanager
def writer_for(client: ApiClient, field_manager: str = FIELD_MANAGER) -> Iterator[ApiWriter]:
    """An ``ApiWriter`` over ``client`` (closed after; the client stays open)."""
    writer = ApiWriter(client, WriterOptions(field_manager=field_manager))
    try:
        yield writer
    finally:
        writer.close()


# -- recording what reconcilers saw -----------------------------------------------------------


class CallLog:
    """Thread-safe record of reconcile calls: (uid, name, obj or None, attempt, monotonic start)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[tuple[str, str, dict[str, Any] | None, int, float]] = []

    def add(self, request: Request, obj: dict[str, Any] | None, ctx: ReconcileContext) -> None:
        with self._lock:
            self.calls.append((request.uid, request.name, obj, ctx.attempt, time.monotonic()))

    def of(self, name: str) -> list[tuple[str, str, dict[str, Any] | None, int, float]]:
        with self._lock:
            return [c for c in self.calls if c[1] == name]

    def of_uid(self, uid: str) -> list[tuple[str, str, dict[str, Any] | None, int, float]]:
        with self._lock:
            return [c for c in self.calls if c[0] == uid]


class OverlapProbe:
    """Counts reconciles in progress per key and remembers the most ever seen at once for one key
    (the controller promises 1) and across keys."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[str, int] = {}
        self.max_per_key = 0
        self.max_total = 0

    @contextmanager
    def inside(self, key: str) -> Iterator[None]:
        with self._lock:
            self._active[key] = self._active.get(key, 0) + 1
            self.max_per_key = max(self.max_per_key, self._active[key])
            self.max_total = max(self.max_total, sum(self._active.values()))
        try:
            yield
        finally:
            with self._lock:
                self._active[key] -= 1


class RecordingLimiter:
    """Wraps a rate limiter and records every delay it hands out."""

    def __init__(self, inner: RateLimiter) -> None:
        self.inner = inner
        self.delays: list[float] = []

    def when(self, item: Any) -> float:
        delay = self.inner.when(item)
        self.delays.append(delay)
        return delay

    def forget(self, item: Any) -> None:
        self.inner.forget(item)

    def num_requeues(self, item: Any) -> int:
        return self.inner.num_requeues(item)
