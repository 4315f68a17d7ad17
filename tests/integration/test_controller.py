"""Controllers against a real apiserver: a sample Widget CRD (status subresource) reconciled into one
owned ConfigMap with a Ready condition; bursts collapsing into few reconciles; exponential backoff of
a failing reconciler; delete + re-create as two UIDs; a hung reconcile timed out while other keys
progress; a TerminalError never retried.

The sample reconciler writes through ``ApiClient.request`` directly; once ``controllers.writer``
lands, its ``ApiWriter`` (create / update_status with conflict handling) should replace
``WidgetReconciler._send``."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterator
from hashlib import blake2b
from typing import Any

import anyio
import orjson
import pytest

from controllers.conditions import get_condition, set_condition
from controllers.controller import Controller
from controllers.errors import TerminalError
from controllers.ratelimit import RateLimiter, default_controller_rate_limiter
from controllers.reconciler import ReconcileContext
from controllers.request import Request
from controllers.result import Result
from controllers.triggers import owns, request_kind
from informers.client import ApiClient
from informers.errors import AlreadyExistsError, InformerdError, NotFoundError
from informers.factory import InformerFactory
from informers.indexers import OWNER_UID_INDEX
from informers.objects import controller_owner
from informers.resources import Resource
from informers.testing import ControlPlane

from .support import api_client, wait_for

pytestmark = pytest.mark.integration

CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", True)


@pytest.fixture(scope="module")
def widgets(control_plane: ControlPlane) -> Iterator[Resource]:
    """A namespaced Widget CRD with a status subresource, served before the tests use it."""
    group = f"ctl{blake2b(str(time.time_ns()).encode(), digest_size=4).hexdigest()}.example.com"
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": schema}}]},
    }
    control_plane.request_json("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    wait_for(lambda: control_plane.request("GET", f"/apis/{group}/v1/widgets")[0] == 200, 30, "Widget CRD served")
    yield Resource(group, "v1", "widgets", "Widget", True)
    control_plane.request("DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}")


# -- helpers ------------------------------------------------------------------------------------


def create_widget(plane: ControlPlane, widgets: Resource, namespace: str, name: str, size: int = 1) -> dict[str, Any]:
    body = {"apiVersion": widgets.api_version, "kind": "Widget", "metadata": {"name": name}, "spec": {"size": size}}
    return plane.request_json("POST", widgets.path(namespace), body)


def patch_spec(plane: ControlPlane, widgets: Resource, namespace: str, name: str, size: int) -> dict[str, Any]:
    status, data = plane.request("PATCH", widgets.path(namespace, name), {"spec": {"size": size}},
                                 content_type="application/merge-patch+json")
    assert status == 200, data[:300]
    return orjson.loads(data)


def get(plane: ControlPlane, path: str) -> dict[str, Any] | None:
    status, data = plane.request("GET", path)
    return orjson.loads(data) if status == 200 else None


def children_of(plane: ControlPlane, namespace: str, owner_uid: str) -> list[dict[str, Any]]:
    items = plane.request_json("GET", CONFIGMAPS.path(namespace))["items"]
    return [cm for cm in items if (controller_owner(cm) or {}).get("uid") == owner_uid]


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    await anyio.to_thread.run_sync(wait_for, condition, timeout, what)


async def run_until(controller: Controller, body: Callable[[], Any]) -> None:
    async with anyio.create_task_group() as group:
        group.start_soon(controller.run)
        assert await controller.wait_synced(30), "controller caches did not sync"
        await body()
        group.cancel_scope.cancel()


def client_for(plane: ControlPlane) -> Any:
    return api_client(plane.admin_kubeconfig, qps=-1)  # no client-side throttling in tests


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


class ChildOwnedElsewhereError(InformerdError):
    """The child's name is taken by an object another owner controls (retry: it may be cleaned up)."""

    retryable = True


class WidgetReconciler:
    """The sample: one ConfigMap ``<widget>-config`` per Widget, owned by it (controller=true), holding
    ``spec.size``; then a Ready condition and ``status.observedGeneration`` through ``/status``.
    Idempotent: GET-or-create under a deterministic name, update only on drift, status only on change."""

    def __init__(self, client: ApiClient, widgets: Resource, children: Any) -> None:
        self.client = client
        self.widgets = widgets
        self.children = children  # the ConfigMap informer (owner-UID index installed by owns())
        self.log = CallLog()

    def _send(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        # To be replaced by controllers.writer.ApiWriter once it lands.
        return self.client.request(method, path, body=body, content_type=content_type).json()

    def reconcile(self, request: Request, obj: dict[str, Any] | None, ctx: ReconcileContext) -> Result | None:
        self.log.add(request, obj, ctx)
        if obj is None:
            # Gone. The test control plane runs no garbage collector, so delete our children here.
            for child in self.children.store.by_index(OWNER_UID_INDEX, request.uid):
                meta = child["metadata"]
                try:
                    self._send("DELETE", CONFIGMAPS.path(meta["namespace"], meta["name"]),
                               {"preconditions": {"uid": meta["uid"]}})
                except NotFoundError:
                    pass
            return None
        meta = obj["metadata"]
        self._ensure_child(obj)
        status = copy.deepcopy(obj.get("status") or {})
        changed = set_condition(status, "Ready", True, "ChildReady", f"ConfigMap {meta['name']}-config is up to date",
                                observed_generation=meta["generation"])
        if status.get("observedGeneration") != meta["generation"]:
            status["observedGeneration"] = meta["generation"]
            changed = True
        if changed:  # PUT with the cached resourceVersion: a 409 on a stale cache is retried with backoff
            self._send("PUT", self.widgets.path(meta["namespace"], meta["name"], "status"), {**obj, "status": status})
        return None

    def _ensure_child(self, widget: dict[str, Any]) -> None:
        meta = widget["metadata"]
        ns, name = meta["namespace"], f"{meta['name']}-config"
        data = {"size": str(widget["spec"]["size"])}
        try:
            child = self._send("GET", CONFIGMAPS.path(ns, name))
        except NotFoundError:
            owner = {"apiVersion": widget["apiVersion"], "kind": "Widget", "name": meta["name"], "uid": meta["uid"],
                     "controller": True, "blockOwnerDeletion": True}
            body = {"apiVersion": "v1", "kind": "ConfigMap", "data": data,
                    "metadata": {"name": name, "namespace": ns, "ownerReferences": [owner]}}
            try:
                self._send("POST", CONFIGMAPS.path(ns), body)
            except AlreadyExistsError:
                pass  # a previous call created it: the next pass (its ADDED event) checks it
            return
        if (controller_owner(child) or {}).get("uid") != meta["uid"]:
            raise ChildOwnedElsewhereError(f"ConfigMap {ns}/{name} is controlled by another object")
        if child.get("data") != data:
            self._send("PUT", CONFIGMAPS.path(ns, name), {**child, "data": data})


def converged(plane: ControlPlane, widgets: Resource, namespace: str, name: str) -> Callable[[], bool]:
    def check() -> bool:
        widget = get(plane, widgets.path(namespace, name))
        if widget is None:
            return False
        gen = widget["metadata"]["generation"]
        ready = get_condition(widget, "Ready")
        children = children_of(plane, namespace, widget["metadata"]["uid"])
        return (widget.get("status", {}).get("observedGeneration") == gen and ready is not None
                and ready["status"] == "True" and ready.get("observedGeneration") == gen
                and len(children) == 1 and children[0]["data"] == {"size": str(widget["spec"]["size"])})

    return check


def sample_controller(factory: InformerFactory, client: ApiClient, widgets: Resource,
                      **options: Any) -> tuple[Controller, WidgetReconciler]:
    reconciler = WidgetReconciler(client, widgets, factory.informer(CONFIGMAPS))
    controller = Controller(factory, widgets, reconciler, triggers=[owns(CONFIGMAPS)], **options)
    return controller, reconciler


# -- tests --------------------------------------------------------------------------------------


def test_sample_reconciler_converges_to_one_owned_child_and_ready_status(
    control_plane: ControlPlane, namespace: str, widgets: Resource
) -> None:
    created = create_widget(control_plane, widgets, namespace, "w1", size=1)
    uid = created["metadata"]["uid"]

    async def main() -> None:
        with client_for(control_plane) as client:
            async with InformerFactory(client, namespace=namespace) as factory:
                controller, reconciler = sample_controller(factory, client, widgets, max_concurrent_reconciles=2)

                async def body() -> None:
                    await wait_until(converged(control_plane, widgets, namespace, "w1"), 30, "w1 converged")
                    patch_spec(control_plane, widgets, namespace, "w1", 2)  # generation 2
                    await wait_until(converged(control_plane, widgets, namespace, "w1"), 30, "w1 converged again")
                    # Idempotency: two more passes over the same state change nothing.
                    widget = get(control_plane, widgets.path(namespace, "w1"))
                    before = (widget["metadata"]["resourceVersion"],
                              [c["metadata"]["resourceVersion"] for c in children_of(control_plane, namespace, uid)])
                    request = Request(request_kind(widgets), uid, namespace, "w1")
                    for _ in range(2):
                        await anyio.to_thread.run_sync(reconciler.reconcile, request, copy.deepcopy(widget),
                                                       ReconcileContext(request))
                    after = (get(control_plane, widgets.path(namespace, "w1"))["metadata"]["resourceVersion"],
                             [c["metadata"]["resourceVersion"] for c in children_of(control_plane, namespace, uid)])
                    assert after == before and len(after[1]) == 1
                    # owns(): deleting the child wakes its owner, which re-creates it.
                    [child] = children_of(control_plane, namespace, uid)
                    control_plane.request_json("DELETE", CONFIGMAPS.path(namespace, "w1-config"))
                    await wait_until(lambda: [c["metadata"]["uid"] for c in children_of(control_plane, namespace, uid)]
                                     not in ([], [child["metadata"]["uid"]]), 30, "child re-created")
                    await wait_until(converged(control_plane, widgets, namespace, "w1"), 30, "w1 converged (child)")

                await run_until(controller, body)
                stats = controller.statistics()
                assert stats.workers.panics_total == 0 and stats.workers.success_total >= 3
                assert stats.workers.max_concurrent_reconciles == 2

    anyio.run(main)
    [child] = children_of(control_plane, namespace, uid)
    owner = controller_owner(child)
    assert owner is not None and owner["kind"] == "Widget" and owner["apiVersion"] == widgets.api_version


def test_a_burst_of_100_updates_yields_far_fewer_reconciles_and_the_last_sees_the_latest_state(
    control_plane: ControlPlane, namespace: str, widgets: Resource
) -> None:
    create_widget(control_plane, widgets, namespace, "busy", size=0)
    log = CallLog()
    gate = threading.Event()

    def reconcile(request: Request, obj: dict[str, Any] | None, ctx: ReconcileContext) -> None:
        log.add(request, obj, ctx)
        gate.wait(30)  # the first call is busy while the burst arrives

    async def main() -> None:
        with client_for(control_plane) as client:
            async with InformerFactory(client, namespace=namespace) as factory:
                controller = Controller(factory, widgets, reconcile)

                async def body() -> None:
                    await wait_until(lambda: len(log.calls) == 1, 30, "first reconcile")
                    before = controller.statistics().notifications_total

                    def burst() -> dict[str, Any]:
                        last: dict[str, Any] = {}
                        for size in range(1, 101):
                            last = patch_spec(control_plane, widgets, namespace, "busy", size)
                        return last

                    last = await anyio.to_thread.run_sync(burst)
                    await wait_until(lambda: controller.statistics().notifications_total >= before + 100, 30,
                                     "100 update notifications handled")
                    gate.set()
                    await wait_until(lambda: log.calls[-1][2] is not None
                                     and log.calls[-1][2]["metadata"]["resourceVersion"]
                                     == last["metadata"]["resourceVersion"]
                                     and controller.queue.statistics().processing == 0, 30, "latest state reconciled")
                    await anyio.sleep(0.3)  # nothing else is pending: no further call may come

                await run_until(controller, body)
                events = controller.statistics().notifications_total
                assert events >= 101
                assert len(log.calls) == 2  # the initial object, then everything the burst changed
                assert log.calls[-1][2]["spec"]["size"] == 100

    anyio.run(main)


def test_a_reconciler_that_raises_is_recovered_and_backs_off_exponentially(
    control_plane: ControlPlane, namespace: str, widgets: Resource
) -> None:
    create_widget(control_plane, widgets, namespace, "flaky")
    failures = 6
    log = CallLog()
    limiter = RecordingLimiter(default_controller_rate_limiter())

    async def reconcile(request: Request, obj: dict[str, Any] | None, ctx: ReconcileContext) -> None:
        log.add(request, obj, ctx)
        if len(log.calls) <= failures:
            raise RuntimeError(f"simulated bug #{len(log.calls)}")

    async def main() -> None:
        with client_for(control_plane) as client:
            async with InformerFactory(client, namespace=namespace) as factory:
                controller = Controller(factory, widgets, reconcile, rate_limiter=limiter)

                async def body() -> None:
                    await wait_until(lambda: len(log.calls) == failures + 1, 30, "success after the failures")
                    await wait_until(lambda: controller.statistics().workers.success_total == 1, 10, "success counted")

                await run_until(controller, body)
                stats = controller.statistics().workers
                assert (stats.error_total, stats.panics_total, stats.success_total) == (failures, failures, 1)
                uid = log.calls[0][0]
                assert limiter.num_requeues(Request(request_kind(widgets), uid)) == 0  # forgotten on success

    anyio.run(main)
    # The queue asked the limiter once per failure and got controller-runtime's 5 ms doubling...
    assert limiter.delays == pytest.approx([0.005 * 2**i for i in range(failures)])
    # ...each attempt knew how many failures preceded it...
    assert [c[3] for c in log.calls] == list(range(failures + 1))
    # ...and no retry came before its delay (a lower bound only: no claim about speed).
    starts = [c[4] for c in log.calls]
    for i, delay in enumerate(limiter.delays):
        assert starts[i + 1] - starts[i] >= delay * 0.9


def test_delete_and_recreate_under_one_name_reconciles_both_uids_separately(
    control_plane: ControlPlane, namespace: str, widgets: Resource
) -> None:
    first = create_widget(control_plane, widgets, namespace, "phoenix")["metadata"]["uid"]

    async def main() -> None:
        with client_for(control_plane) as client:
            async with InformerFactory(client, namespace=namespace) as factory:
                controller, reconciler = sample_controller(factory, client, widgets)

                async def body() -> None:
                    await wait_until(converged(control_plane, widgets, namespace, "phoenix"), 30, "first converged")
                    control_plane.request_json("DELETE", widgets.path(namespace, "phoenix"))
                    await wait_until(lambda: any(c[0] == first and c[2] is None for c in reconciler.log.calls), 30,
                                     "the old UID reconciled as gone")
                    second = create_widget(control_plane, widgets, namespace, "phoenix")["metadata"]["uid"]
                    assert second != first
                    await wait_until(converged(control_plane, widgets, namespace, "phoenix"), 30, "second converged")
                    calls = reconciler.log.of("phoenix")
                    assert all(c[2] is not None and c[2]["metadata"]["uid"] == second for c in calls if c[0] == second)
                    assert all(c[2] is None or c[2]["metadata"]["uid"] == first for c in calls if c[0] == first)
                    assert children_of(control_plane, namespace, first) == []

                await run_until(controller, body)

    anyio.run(main)


def test_a_hung_reconcile_times_out_and_frees_the_worker_for_other_keys(
    control_plane: ControlPlane, namespace: str, widgets: Resource
) -> None:
    create_widget(control_plane, widgets, namespace, "hang")
    log = CallLog()
    hung = threading.Event()
    release = threading.Event()

    def reconcile(request: Request, obj: dict[str, Any] | None, ctx: ReconcileContext) -> None:
        log.add(request, obj, ctx)
        if request.name == "hang" and ctx.attempt == 0:
            hung.set()
            release.wait(60)  # ignores ctx.cancelled: the thread overruns, the worker must not wait for it

    async def main() -> None:
        with client_for(control_plane) as client:
            async with InformerFactory(client, namespace=namespace) as factory:
                controller = Controller(factory, widgets, reconcile, max_concurrent_reconciles=1,
                                        reconcile_timeout=0.5)

                async def body() -> None:
                    await anyio.to_thread.run_sync(hung.wait, 30)
                    for i in range(3):
                        create_widget(control_plane, widgets, namespace, f"ok-{i}")
                    await wait_until(lambda: all(log.of(f"ok-{i}") for i in range(3)), 30, "other keys reconciled")
                    assert not release.is_set() and len(log.of("hang")) == 1  # still hung, never doubled
                    stats = controller.statistics().workers
                    assert stats.timeouts_total == 1 and stats.overrun_threads == 1
                    release.set()
                    await wait_until(lambda: len(log.of("hang")) == 2, 30, "hang retried after its thread returned")
                    await wait_until(lambda: controller.statistics().workers.overrun_threads == 0, 10, "thread gone")

                await run_until(controller, body)

    anyio.run(main)
    assert [c[3] for c in log.of("hang")] == [0, 1]


def test_a_terminal_error_is_not_retried_until_the_object_changes(
    control_plane: ControlPlane, namespace: str, widgets: Resource
) -> None:
    create_widget(control_plane, widgets, namespace, "bad", size=-1)
    log = CallLog()

    async def reconcile(request: Request, obj: dict[str, Any] | None, ctx: ReconcileContext) -> None:
        log.add(request, obj, ctx)
        if obj is not None and obj["spec"]["size"] < 0:
            raise TerminalError("spec.size must be >= 0")

    async def main() -> None:
        with client_for(control_plane) as client:
            async with InformerFactory(client, namespace=namespace) as factory:
                controller = Controller(factory, widgets, reconcile)

                async def body() -> None:
                    await wait_until(lambda: len(log.of("bad")) == 1, 30, "bad reconciled once")
                    create_widget(control_plane, widgets, namespace, "good")
                    await wait_until(lambda: len(log.of("good")) == 1, 30, "a later key reconciled")
                    await anyio.sleep(1.0)  # a retry (5 ms backoff) would have come long ago
                    assert len(log.of("bad")) == 1
                    stats = controller.statistics().workers
                    assert (stats.terminal_errors_total, stats.error_total, stats.panics_total) == (1, 1, 0)
                    patch_spec(control_plane, widgets, namespace, "bad", 3)  # a new event: reconciled again
                    await wait_until(lambda: len(log.of("bad")) == 2, 30, "bad reconciled after a fix")

                await run_until(controller, body)
                assert controller.queue.statistics().delayed == 0

    anyio.run(main)
