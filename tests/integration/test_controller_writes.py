"""A running controller whose reconcilers write through ``ApiWriter`` against a real apiserver.

Three properties of writes from reconcilers: a read-modify-write that loses a race raises
``ConflictError``, is requeued with backoff and converges after re-reading the cache; a finalizer is
stored before any side effect, holds a deleted object until the cleanup ran, and is then removed so
the object goes (the reconciler finally gets ``None``); server-side apply of an owned child from
repeated passes keeps exactly one child. Interleavings that matter are forced with gates, never
with sleeps; outcomes are read from the server, the cache and statistics.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

import anyio
import pytest

from controllers.api import Api
from controllers.controller import Controller
from controllers.finalizers import has_finalizer, reconcile_finalizer
from controllers.ratelimit import default_controller_rate_limiter
from controllers.reconciler import ReconcileContext
from controllers.request import Request
from controllers.result import Result
from controllers.triggers import owns, request_kind
from controllers.writer import ApiWriter
from informers import objects
from informers.errors import AlreadyExistsError, ConflictError
from informers.factory import InformerFactory
from informers.resources import Resource
from informers.testing import ControlPlane

from .widgets import (
    CONFIGMAPS,
    FIELD_MANAGER,
    CallLog,
    OverlapProbe,
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

OBSERVED = "widgets.example.com/observed-size"
FINALIZER = "widgets.example.com/external-cleanup"


@pytest.fixture(scope="module")
def widgets(control_plane: ControlPlane) -> Iterator[Resource]:
    with widget_crd(control_plane) as resource:
        yield resource


# -- conflicts ------------------------------------------------------------------------------------


class AnnotatingReconciler:
    """Read-modify-write: copies ``spec.size`` into an annotation with ``writer.update`` of the cached
    object, so the write is conditional on the cached resourceVersion. The first call for ``gated``
    waits on ``release`` after it got its object, so the test can change the object under it."""

    def __init__(self, writer: ApiWriter, widgets: Resource, gated: str) -> None:
        self.writer = writer
        self.widgets = widgets
        self.gated = gated
        self.log = CallLog()
        self.probe = OverlapProbe()
        self.holding = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        #: (uid, the stale resourceVersion the refused update carried)
        self.conflicts: list[tuple[str, str]] = []

    def reconcile(self, request: Request, obj: dict[str, Any] | None, ctx: ReconcileContext) -> None:
        with self.probe.inside(request.uid):
            self.log.add(request, obj, ctx)
            if obj is None:
                return
            if request.name == self.gated and not self.holding.is_set():
                self.holding.set()
                self.release.wait(30)
            want = str(obj["spec"]["size"])
            if objects.annotations(obj).get(OBSERVED) == want:
                return  # converged: no write at all
            obj["metadata"]["annotations"] = {**objects.annotations(obj), OBSERVED: want}
            try:
                self.writer.update(self.widgets, obj)
            except ConflictError:
                with self._lock:
                    self.conflicts.append((request.uid, objects.resource_version(obj) or ""))
                raise


def test_a_conflicting_read_modify_write_is_retried_with_backoff_and_converges(
    control_plane: ControlPlane, namespace: str, widgets: Resource
) -> None:
    names = ["c0", "c1", "c2"]
    uids = {name: create_widget(control_plane, widgets, namespace, name, size=0)["metadata"]["uid"] for name in names}
    final_size = 15
    limiter = RecordingLimiter(default_controller_rate_limiter())

    def observed_everywhere() -> bool:
        for name in names:
            widget = get(control_plane, widgets.path(namespace, name))
            if widget is None or objects.annotations(widget).get(OBSERVED) != str(final_size):
                return False
        return True

    async def main() -> None:
        with client_for(control_plane) as client, writer_for(client) as writer:
            async with InformerFactory(client, namespace=namespace) as factory:
                reconciler = AnnotatingReconciler(writer, widgets, gated="c0")
                controller = Controller(factory, widgets, reconciler, max_concurrent_reconciles=3, rate_limiter=limiter)

                async def body() -> None:
                    # c0's first call holds its cached object; the test writes c0 meanwhile, so the
                    # update that follows carries a stale resourceVersion: a certain conflict.
                    await anyio.to_thread.run_sync(reconciler.holding.wait, 30)
                    [held] = reconciler.log.of("c0")
                    assert held[2] is not None
                    stale_rv = held[2]["metadata"]["resourceVersion"]
                    patch_spec(control_plane, widgets, namespace, "c0", 1)
                    reconciler.release.set()
                    await wait_until(
                        lambda: (uids["c0"], stale_rv) in reconciler.conflicts, 30, "the stale update refused"
                    )

                    def churn() -> None:  # more concurrent writes to every widget while it reconciles
                        for size in range(2, final_size + 1):
                            for name in names:
                                patch_spec(control_plane, widgets, namespace, name, size)

                    await anyio.to_thread.run_sync(churn)
                    await wait_until(observed_everywhere, 60, f"annotation {OBSERVED}={final_size} on every widget")
                    queue = controller.queue
                    await wait_until(
                        lambda: len(queue) == 0 and queue.statistics().processing == 0, 30, "an idle queue"
                    )
                    # A retry of c0 (attempt >= 1: the failure was not forgotten) re-read a newer version.
                    retries = [c for c in reconciler.log.of_uid(uids["c0"]) if c[3] >= 1]
                    assert any(c[2] is not None and c[2]["metadata"]["resourceVersion"] != stale_rv for c in retries)

                await run_until(controller, body)
                stats = controller.statistics().workers
                writes = writer.statistics()
                conflicts = len(reconciler.conflicts)
                assert conflicts >= 1
                # Every reconcile error was one of our recorded conflicts, raised typed by the writer.
                assert stats.error_total == writes.conflicts == conflicts
                assert writes.errors == {"ConflictError": conflicts}
                assert (stats.panics_total, stats.terminal_errors_total) == (0, 0)
                assert stats.success_total >= len(names)
                # Each failure was requeued through the rate limiter with a positive delay (backoff).
                assert 1 <= len(limiter.delays) <= conflicts and all(d > 0 for d in limiter.delays)
                assert reconciler.probe.max_per_key == 1  # never two calls for one key at once

    anyio.run(main)
    for name in names:  # the test's writes were never overwritten by a stale update
        widget = get(control_plane, widgets.path(namespace, name))
        assert widget is not None and widget["spec"]["size"] == final_size
        assert objects.annotations(widget)[OBSERVED] == str(final_size)


# -- finalizers -----------------------------------------------------------------------------------


def external_name(uid: str) -> str:
    return f"external-{uid}"


class FinalizingReconciler:
    """Creates an "external resource" per Widget UID (a ConfigMap with no owner reference, so nothing
    but us would ever delete it), guarded by a finalizer: ``reconcile_finalizer`` adds it before the
    side effect and, once the Widget is being deleted, runs the cleanup (delete the marker) and
    removes it. The cleanup waits on ``release`` so the test can look at the lingering object."""

    def __init__(self, writer: ApiWriter, widgets: Resource) -> None:
        self.writer = writer
        self.widgets = widgets
        self.log = CallLog()
        self.probe = OverlapProbe()
        self.cleanup_started = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        #: Ordered (what, uid, detail): ("effect", uid, finalizer stored on the server at that moment),
        #: ("cleanup", uid, marker deleted by this call), ("gone", uid, None).
        self.timeline: list[tuple[str, str, bool | None]] = []

    def _note(self, what: str, uid: str, detail: bool | None) -> None:
        with self._lock:
            self.timeline.append((what, uid, detail))

    def of(self, uid: str) -> list[tuple[str, bool | None]]:
        with self._lock:
            return [(what, detail) for what, u, detail in self.timeline if u == uid]

    def reconcile(self, request: Request, obj: dict[str, Any] | None, ctx: ReconcileContext) -> None:
        with self.probe.inside(request.uid):
            self.log.add(request, obj, ctx)
            if obj is None:
                self._note("gone", request.uid, None)
                return
            outcome = reconcile_finalizer(self.writer, self.widgets, obj, FINALIZER, self._cleanup)
            if outcome.proceed and outcome.obj is not None:
                self._ensure_external(outcome.obj)

    def _ensure_external(self, widget: Mapping[str, Any]) -> None:
        meta = widget["metadata"]
        # Instrumentation only: what the server holds right before the side effect.
        live = self.writer.get(self.widgets, meta["name"], namespace=meta["namespace"])
        self._note("effect", meta["uid"], live["metadata"]["uid"] == meta["uid"] and has_finalizer(live, FINALIZER))
        marker = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": external_name(meta["uid"]), "namespace": meta["namespace"]},
            "data": {"widget": meta["name"], "uid": meta["uid"]},
        }
        try:
            self.writer.create(CONFIGMAPS, marker)
        except AlreadyExistsError:
            pass  # made by an earlier pass

    def _cleanup(self, widget: Mapping[str, Any]) -> None:
        meta = widget["metadata"]
        self.cleanup_started.set()
        self.release.wait(30)
        # Idempotent: a marker already deleted answers None.
        deleted = self.writer.delete(CONFIGMAPS, external_name(meta["uid"]), namespace=meta["namespace"])
        self._note("cleanup", meta["uid"], deleted is not None)


def test_deletion_runs_the_finalizer_cleanup_once_per_uid_then_lets_the_object_go(
    control_plane: ControlPlane, namespace: str, widgets: Resource
) -> None:
    first = create_widget(control_plane, widgets, namespace, "fin")["metadata"]["uid"]
    path = widgets.path(namespace, "fin")
    uids = [first]

    def marker(uid: str) -> dict[str, Any] | None:
        return get(control_plane, CONFIGMAPS.path(namespace, external_name(uid)))

    async def main() -> None:
        with client_for(control_plane) as client, writer_for(client) as writer:
            async with InformerFactory(client, namespace=namespace) as factory:
                reconciler = FinalizingReconciler(writer, widgets)
                controller = Controller(factory, widgets, reconciler, max_concurrent_reconciles=2)

                def cached(uid: str) -> dict[str, Any] | None:
                    informer = controller.primary_informer
                    assert informer is not None
                    found: dict[str, Any] | None = informer.store.get_by_uid(uid)
                    return found

                async def gone_everywhere(uid: str) -> None:
                    await wait_until(lambda: get(control_plane, path) is None, 30, "the widget gone from the server")
                    await wait_until(lambda: cached(uid) is None, 30, "the widget gone from the cache")
                    await wait_until(lambda: ("gone", None) in reconciler.of(uid), 30, "a reconcile with None")

                async def body() -> None:
                    await wait_until(lambda: marker(first) is not None, 30, "the external resource created")
                    widget = get(control_plane, path)
                    assert widget is not None and has_finalizer(widget, FINALIZER)

                    deleting = control_plane.request_json("DELETE", path)
                    assert objects.deletion_timestamp(deleting) is not None  # held by our finalizer
                    await anyio.to_thread.run_sync(reconciler.cleanup_started.wait, 30)
                    # The cleanup is under way (and held): the object lingers, deleting, everywhere.
                    lingering = get(control_plane, path)
                    assert lingering is not None and lingering["metadata"]["uid"] == first
                    assert objects.deletion_timestamp(lingering) is not None and has_finalizer(lingering, FINALIZER)
                    in_cache = cached(first)
                    assert in_cache is not None and objects.deletion_timestamp(in_cache) is not None
                    assert marker(first) is not None
                    reconciler.release.set()
                    await gone_everywhere(first)
                    assert marker(first) is None

                    # Reconciling the stale deleting state again is harmless: the cleanup finds
                    # nothing to delete and the finalizer removal finds no object.
                    request = Request(request_kind(widgets), first, namespace, "fin")
                    await anyio.to_thread.run_sync(reconciler.reconcile, request, lingering, ReconcileContext(request))
                    assert reconciler.of(first)[-1] == ("cleanup", False)

                    # The same name again is a new UID with its own finalizer, resource and cleanup.
                    second = create_widget(control_plane, widgets, namespace, "fin")["metadata"]["uid"]
                    uids.append(second)
                    await wait_until(lambda: marker(second) is not None, 30, "the second external resource")
                    control_plane.request_json("DELETE", path)
                    await gone_everywhere(second)
                    assert marker(second) is None

                await run_until(controller, body)
                stats = controller.statistics().workers
                assert (stats.panics_total, stats.terminal_errors_total) == (0, 0)
                writes = writer.statistics()
                # Any failed pass was a stale read refused by the server (then retried).
                assert stats.error_total == writes.errors.get("ConflictError", 0)
                # The writer's only 404: the forced pass's finalizer removal (a delete of the missing
                # marker answers None and is no error; an existing marker is AlreadyExists, handled).
                assert writes.errors.get("NotFoundError") == 1 and writes.deletes_already_gone == 1
                assert reconciler.probe.max_per_key == 1

                for uid in uids:
                    timeline = reconciler.of(uid)
                    effects = [i for i, (what, _) in enumerate(timeline) if what == "effect"]
                    cleanups = [i for i, (what, _) in enumerate(timeline) if what == "cleanup"]
                    gone = [i for i, (what, _) in enumerate(timeline) if what == "gone"]
                    # The finalizer was on the server before every side effect...
                    assert effects and all(timeline[i][1] is True for i in effects), timeline
                    # ...the controller's cleanup came after the last side effect and deleted the
                    # external resource, and only then (the object gone) was it reconciled as None.
                    assert timeline[cleanups[0]][1] is True and max(effects) < cleanups[0] < min(gone), timeline
                # The controller ran each UID's cleanup exactly once; the forced extra pass over the
                # first UID ran it again and found nothing to delete: one deletion per UID.
                ran = Counter(u for what, u, _ in reconciler.timeline if what == "cleanup")
                assert ran == Counter([first, first, uids[1]])
                deleted = Counter(u for what, u, detail in reconciler.timeline if what == "cleanup" and detail)
                assert deleted == Counter(uids)

    anyio.run(main)
    assert get(control_plane, path) is None
    assert [
        cm
        for cm in control_plane.request_json("GET", CONFIGMAPS.path(namespace))["items"]
        if cm["metadata"]["name"].startswith("external-")
    ] == []


# -- server-side apply ---------------------------------------------------------------------------


class ApplyingReconciler:
    """An async reconciler that server-side applies its owned child ``<widget>-child`` (holding
    ``spec.size``) through ``controllers.api.Api`` (the async door to ``ApiWriter``) and asks for one more pass after its first apply."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.log = CallLog()
        #: (widget uid, the child as the apply answered)
        self.applied: list[tuple[str, dict[str, Any]]] = []

    async def reconcile(self, request: Request, obj: dict[str, Any] | None, ctx: ReconcileContext) -> Result | None:
        self.log.add(request, obj, ctx)
        if obj is None:
            return None
        meta = obj["metadata"]
        owner = {
            "apiVersion": obj["apiVersion"],
            "kind": obj["kind"],
            "name": meta["name"],
            "uid": meta["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        intent = {
            "metadata": {"name": f"{meta['name']}-child", "namespace": meta["namespace"], "ownerReferences": [owner]},
            "data": {"size": str(obj["spec"]["size"])},
        }
        child = await self.api.apply(intent)
        first_apply = not any(uid == meta["uid"] for uid, _ in self.applied)
        self.applied.append((meta["uid"], child))
        return Result.requeue() if first_apply else None  # the same state again: must not add a child


def test_applying_the_owned_child_on_every_pass_keeps_exactly_one_child(
    control_plane: ControlPlane, namespace: str, widgets: Resource
) -> None:
    uid = create_widget(control_plane, widgets, namespace, "applied", size=1)["metadata"]["uid"]

    def child_data() -> list[dict[str, str]]:
        return [c.get("data", {}) for c in children_of(control_plane, namespace, uid)]

    async def main() -> None:
        with client_for(control_plane) as client, writer_for(client) as writer:
            async with InformerFactory(client, namespace=namespace) as factory:
                reconciler = ApplyingReconciler(Api(writer, factory, CONFIGMAPS))
                controller = Controller(factory, widgets, reconciler, triggers=[owns(CONFIGMAPS)])

                async def body() -> None:
                    await wait_until(
                        lambda: len(reconciler.applied) >= 2 and controller.statistics().workers.success_total >= 1,
                        30,
                        "two applies",
                    )
                    # The requeued pass had the same spec: same child, and nothing changed (no-op apply).
                    [(_, first), (_, second)] = reconciler.applied[:2]
                    assert second["metadata"]["uid"] == first["metadata"]["uid"]
                    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
                    assert [c[3] for c in reconciler.log.of_uid(uid)[:2]] == [0, 1]  # requeue counted once
                    assert child_data() == [{"size": "1"}]
                    # A new spec is applied onto the same child.
                    patch_spec(control_plane, widgets, namespace, "applied", 2)
                    await wait_until(lambda: child_data() == [{"size": "2"}], 30, "the child updated in place")

                await run_until(controller, body)
                stats = controller.statistics().workers
                assert stats.requeue_total >= 1 and stats.error_total == 0 and stats.panics_total == 0
                assert writer.statistics().calls["apply"] >= 3 and writer.statistics().calls.get("create", 0) == 0
                assert {child["metadata"]["uid"] for _, child in reconciler.applied} == {
                    reconciler.applied[0][1]["metadata"]["uid"]
                }

    anyio.run(main)
    names = [cm["metadata"]["name"] for cm in control_plane.request_json("GET", CONFIGMAPS.path(namespace))["items"]]
    assert names.count("applied-child") == 1
    [child] = children_of(control_plane, namespace, uid)
    owner = objects.controller_owner(child)
    assert owner is not None and owner["kind"] == "Widget" and owner["apiVersion"] == widgets.api_version
    assert any(
        m.get("manager") == FIELD_MANAGER and m.get("operation") == "Apply" for m in child["metadata"]["managedFields"]
    )
