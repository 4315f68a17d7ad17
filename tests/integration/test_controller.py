"""Controllers against a real apiserver: a sample Widget CRD (status subresource) reconciled into one
owned ConfigMap with a Ready condition, written through ``ApiWriter``; bursts collapsing into few
reconciles; exponential backoff of a failing reconciler; delete + re-create as two UIDs; a hung
reconcile timed out while other keys progress; a TerminalError never retried. Conflicts, finalizers
and server-side apply from a running controller are in ``test_controller_writes.py``."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest

from controllers.conditions import get_condition, set_condition
from controllers.controller import Controller
from controllers.errors import TerminalError
from controllers.ratelimit import default_controller_rate_limiter
from controllers.reconciler import ReconcileContext
from controllers.request import Request
from controllers.result import Result
from controllers.triggers import owns, request_kind
from controllers.writer import ApiWriter
from informers.errors import AlreadyExistsError, InformerdError, NotFoundError
from informers.factory import InformerFactory
from informers.indexers import OWNER_UID_INDEX
from informers.objects import controller_owner
from informers.resources import Resource
from informers.testing import ControlPlane

from .widgets import (
    CONFIGMAPS,
    CallLog,
    RecordingLimiter,
    children_of,
    client_for,
    create_widget,
    get,
    patch_spec,
    run_until,
    wait_until,
    widget_crd,
    writer_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def widgets(control_plane: ControlPlane) -> Iterator[Resource]:
    with widget_crd(control_plane) as resource:
        yield resource


class ChildOwnedElsewhereError(InformerdError):
    """The child's name is taken by an object another owner controls (retry: it may be cleaned up)."""

    retryable = True


class WidgetReconciler:
    """The sample: one ConfigMap ``<widget>-config`` per Widget, owned by it (controller=true), holding
    ``spec.size``; then a Ready condition and ``status.observedGeneration`` through ``/status``.
    Idempotent: get-or-create under a deterministic name, update only on drift, status only on change.
    Every write goes through ``ApiWriter``: a ``ConflictError`` (stale cache) propagates and the
    controller retries with backoff after re-reading its cache."""

    def __init__(self, writer: ApiWriter, widgets: Resource, children: Any) -> None:
        self.writer = writer
        self.widgets = widgets
        self.children = children  # the ConfigMap informer (owner-UID index installed by owns())
        self.log = CallLog()

    def reconcile(self, request: Request, obj: dict[str, Any] | None, ctx: ReconcileContext) -> Result | None:
        self.log.add(request, obj, ctx)
        if obj is None:
            # Gone. The test control plane runs no garbage collector, so delete our children here
            # (a uid precondition: never a same-named successor; an already-deleted one returns None).
            for child in self.children.store.by_index(OWNER_UID_INDEX, request.uid):
                meta = child["metadata"]
                self.writer.delete(CONFIGMAPS, meta["name"], namespace=meta["namespace"], uid=meta["uid"])
            return None
        meta = obj["metadata"]
        self._ensure_child(obj)
        status = copy.deepcopy(obj.get("status") or {})
        changed = set_condition(
            status,
            "Ready",
            True,
            "ChildReady",
            f"ConfigMap {meta['name']}-config is up to date",
            observed_generation=meta["generation"],
        )
        if status.get("observedGeneration") != meta["generation"]:
            status["observedGeneration"] = meta["generation"]
            changed = True
        if changed:  # PUT with the cached resourceVersion: a 409 on a stale cache is retried with backoff
            self.writer.update_status(self.widgets, {**obj, "status": status})
        return None

    def _ensure_child(self, widget: dict[str, Any]) -> None:
        meta = widget["metadata"]
        ns, name = meta["namespace"], f"{meta['name']}-config"
        data = {"size": str(widget["spec"]["size"])}
        try:
            child = self.writer.get(CONFIGMAPS, name, namespace=ns)
        except NotFoundError:
            owner = {
                "apiVersion": widget["apiVersion"],
                "kind": "Widget",
                "name": meta["name"],
                "uid": meta["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
            body = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "data": data,
                "metadata": {"name": name, "namespace": ns, "ownerReferences": [owner]},
            }
            try:
                self.writer.create(CONFIGMAPS, body)
            except AlreadyExistsError:
                pass  # a previous call created it: the next pass (its ADDED event) checks it
            return
        if (controller_owner(child) or {}).get("uid") != meta["uid"]:
            raise ChildOwnedElsewhereError(f"ConfigMap {ns}/{name} is controlled by another object")
        if child.get("data") != data:
            self.writer.update(CONFIGMAPS, {**child, "data": data})


def converged(plane: ControlPlane, widgets: Resource, namespace: str, name: str) -> Callable[[], bool]:
    def check() -> bool:
        widget = get(plane, widgets.path(namespace, name))
        if widget is None:
            return False
        gen = widget["metadata"]["generation"]
        ready = get_condition(widget, "Ready")
        children = children_of(plane, namespace, widget["metadata"]["uid"])
        return (
            widget.get("status", {}).get("observedGeneration") == gen
            and ready is not None
            and ready["status"] == "True"
            and ready.get("observedGeneration") == gen
            and len(children) == 1
            and children[0]["data"] == {"size": str(widget["spec"]["size"])}
        )

    return check


def _writes(writer: ApiWriter) -> dict[str, int]:
    return {verb: n for verb, n in writer.statistics().calls.items() if verb != "get"}


def sample_controller(
    factory: InformerFactory, writer: ApiWriter, widgets: Resource, **options: Any
) -> tuple[Controller, WidgetReconciler]:
    reconciler = WidgetReconciler(writer, widgets, factory.informer_for(CONFIGMAPS))
    controller = Controller(factory, widgets, reconciler, triggers=[owns(CONFIGMAPS)], **options)
    return controller, reconciler


# -- tests --------------------------------------------------------------------------------------


def test_sample_reconciler_converges_to_one_owned_child_and_ready_status(
    control_plane: ControlPlane, namespace: str, widgets: Resource
) -> None:
    created = create_widget(control_plane, widgets, namespace, "w1", size=1)
    uid = created["metadata"]["uid"]

    async def main() -> None:
        with client_for(control_plane) as client, writer_for(client) as writer:
            async with InformerFactory(client, namespace=namespace) as factory:
                controller, reconciler = sample_controller(factory, writer, widgets, max_concurrent_reconciles=2)

                async def body() -> None:
                    await wait_until(converged(control_plane, widgets, namespace, "w1"), 30, "w1 converged")
                    patch_spec(control_plane, widgets, namespace, "w1", 2)  # generation 2
                    await wait_until(converged(control_plane, widgets, namespace, "w1"), 30, "w1 converged again")
                    # Idempotency: two more passes over the same state change nothing.
                    widget = get(control_plane, widgets.path(namespace, "w1"))
                    before = (
                        widget["metadata"]["resourceVersion"],
                        [c["metadata"]["resourceVersion"] for c in children_of(control_plane, namespace, uid)],
                    )
                    request = Request(request_kind(widgets), uid, namespace, "w1")
                    writes_before = _writes(writer)
                    for _ in range(2):
                        await anyio.to_thread.run_sync(
                            reconciler.reconcile, request, copy.deepcopy(widget), ReconcileContext(request)
                        )
                    after = (
                        get(control_plane, widgets.path(namespace, "w1"))["metadata"]["resourceVersion"],
                        [c["metadata"]["resourceVersion"] for c in children_of(control_plane, namespace, uid)],
                    )
                    assert after == before and len(after[1]) == 1
                    assert _writes(writer) == writes_before  # not even a no-op write was sent
                    # owns(): deleting the child wakes its owner, which re-creates it.
                    [child] = children_of(control_plane, namespace, uid)
                    control_plane.request_json("DELETE", CONFIGMAPS.path(namespace, "w1-config"))
                    await wait_until(
                        lambda: (
                            [c["metadata"]["uid"] for c in children_of(control_plane, namespace, uid)]
                            not in ([], [child["metadata"]["uid"]])
                        ),
                        30,
                        "child re-created",
                    )
                    await wait_until(converged(control_plane, widgets, namespace, "w1"), 30, "w1 converged (child)")

                await run_until(controller, body)
                stats = controller.statistics()
                assert stats.workers.panics_total == 0 and stats.workers.success_total >= 3
                assert stats.workers.max_concurrent_reconciles == 2
                calls = writer.statistics().calls
                assert calls["create"] >= 2 and calls["update_status"] >= 2  # the child twice, status per generation

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
                    await wait_until(
                        lambda: controller.statistics().notifications_total >= before + 100,
                        30,
                        "100 update notifications handled",
                    )
                    gate.set()
                    await wait_until(
                        lambda: (
                            log.calls[-1][2] is not None
                            and log.calls[-1][2]["metadata"]["resourceVersion"] == last["metadata"]["resourceVersion"]
                            and controller.queue.statistics().processing == 0
                        ),
                        30,
                        "latest state reconciled",
                    )
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
        with client_for(control_plane) as client, writer_for(client) as writer:
            async with InformerFactory(client, namespace=namespace) as factory:
                controller, reconciler = sample_controller(factory, writer, widgets)

                async def body() -> None:
                    await wait_until(converged(control_plane, widgets, namespace, "phoenix"), 30, "first converged")
                    control_plane.request_json("DELETE", widgets.path(namespace, "phoenix"))
                    await wait_until(
                        lambda: any(c[0] == first and c[2] is None for c in reconciler.log.calls),
                        30,
                        "the old UID reconciled as gone",
                    )
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
                controller = Controller(factory, widgets, reconcile, max_concurrent_reconciles=1, reconcile_timeout=0.5)

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
