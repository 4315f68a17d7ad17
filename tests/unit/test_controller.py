"""Controller wiring with an in-memory informer fake: keys enqueued by UID from handler
notifications, predicates, owner mapping and the owner index, workers held back until sync (with a
timeout naming the cause), delete + re-create as two keys, and a burst collapsing into few calls."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import pytest

from controllers.controller import Controller
from controllers.errors import ControllerStateError, ControllerSyncTimeoutError
from controllers.predicates import generation_changed
from controllers.ratelimit import ItemExponentialRateLimiter
from controllers.reconciler import ReconcileContext
from controllers.request import Request
from controllers.triggers import owns, watches
from informers.clock import FakeClock
from informers.errors import ForbiddenError
from informers.events import Notification, ObjectAdded, ObjectDeleted, ObjectUpdated
from informers.indexers import OWNER_UID_INDEX
from informers.resources import Resource

WIDGETS = Resource("example.com", "v1", "widgets", "Widget", True)
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", True)
KIND = "example.com/v1/Widget"


@dataclass
class HandlerStats:
    pending: int


class FakeRegistration:
    def __init__(self, name: str, on_event: Callable[[Notification], None]) -> None:
        self.name = name
        self.on_event = on_event
        self.synced = True

    def has_synced(self) -> bool:
        return self.synced

    async def wait_synced(self, timeout: float | None = None) -> bool:
        with anyio.move_on_after(timeout):
            while not self.synced:
                await anyio.sleep(0.002)
        return self.synced

    def statistics(self) -> HandlerStats:
        return HandlerStats(pending=3)


class FakeStore:
    def __init__(self) -> None:
        self.by_uid: dict[str, dict[str, Any]] = {}
        self.index_names: tuple[str, ...] = ("namespace", "uid")

    def get_by_uid(self, uid: str) -> dict[str, Any] | None:
        return self.by_uid.get(uid)

    def add_indexers(self, indexers: dict[str, Any]) -> None:
        self.index_names += tuple(indexers)


class FakeInformer:
    """Delivers notifications synchronously on the caller's thread, like one handler thread."""

    def __init__(self, resource: Resource) -> None:
        self.name = str(resource)
        self.store = FakeStore()
        self.handlers: list[FakeRegistration] = []
        self.synced = True
        self.started = True
        self.last_error: BaseException | None = None

    def add_handler(self, *, on_notification: Callable[[Notification], None], name: str,
                    inline: bool = False) -> FakeRegistration:
        registration = FakeRegistration(name, on_notification)
        self.handlers.append(registration)
        return registration

    def remove_handler(self, registration: FakeRegistration) -> None:
        self.handlers.remove(registration)

    def has_synced(self) -> bool:
        return self.synced

    async def wait_synced(self, timeout: float | None = None) -> bool:
        with anyio.move_on_after(timeout):
            while not self.synced:
                await anyio.sleep(0.002)
        return self.synced

    def emit(self, note: Notification) -> None:
        if isinstance(note, ObjectDeleted):
            self.store.by_uid.pop(note.last_state["metadata"]["uid"], None)
        else:
            obj = note.obj if isinstance(note, ObjectAdded) else note.new
            self.store.by_uid[obj["metadata"]["uid"]] = obj
        for handler in list(self.handlers):
            handler.on_event(note)


class FakeFactory:
    def __init__(self) -> None:
        self.resources = {"Widget": WIDGETS, "v1/configmaps": CONFIGMAPS}
        self.informers: dict[Resource, FakeInformer] = {}

    async def resolve(self, resource: Resource | str) -> Resource:
        return resource if isinstance(resource, Resource) else self.resources[resource]

    def informer_for(self, resource: Resource, *, namespace: str | None = None,
                     label_selector: str | None = None) -> FakeInformer:
        return self.informers.setdefault(resource, FakeInformer(resource))


def widget(uid: str, name: str = "w", rv: str = "1", gen: int = 1, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "spec": spec,
            "metadata": {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": rv, "generation": gen}}


class Calls:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: list[tuple[str, Any]] = []

    def __call__(self, request: Request, obj: Any, ctx: ReconcileContext) -> None:
        with self.lock:
            self.seen.append((request.uid, obj))

    def uids(self) -> list[str]:
        with self.lock:
            return [uid for uid, _ in self.seen]


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.002)


def run_controller(controller: Controller, body: Callable[[], Any]) -> None:
    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(controller.run)
            await body()
            group.cancel_scope.cancel()

    anyio.run(main)


def test_notifications_enqueue_uids_and_reconcile_resolves_from_the_primary_cache() -> None:
    factory = FakeFactory()
    calls = Calls()
    controller = Controller(factory, "Widget", calls)
    assert controller.name == "widget"

    async def body() -> None:
        assert await controller.wait_synced(5)
        informer = factory.informers[WIDGETS]
        informer.emit(ObjectAdded(widget("u1")))
        await wait_until(lambda: calls.uids() == ["u1"])
        assert calls.seen[0][1]["metadata"]["uid"] == "u1"

    run_controller(controller, body)
    stats = controller.statistics()
    assert stats.synced and stats.notifications_total == 1 and stats.enqueued_total == 1
    assert stats.workers.success_total == 1
    assert factory.informers[WIDGETS].handlers == []  # handlers removed on exit


def test_delete_and_recreate_with_the_same_name_are_two_keys_and_the_old_one_sees_none() -> None:
    factory = FakeFactory()
    calls = Calls()
    controller = Controller(factory, "Widget", calls)

    async def body() -> None:
        await controller.wait_synced(5)
        informer = factory.informers[WIDGETS]
        informer.emit(ObjectAdded(widget("old")))
        await wait_until(lambda: calls.uids() == ["old"])
        informer.emit(ObjectDeleted(widget("old")))
        informer.emit(ObjectAdded(widget("new", rv="5")))
        await wait_until(lambda: len(calls.seen) == 3)

    run_controller(controller, body)
    by_uid: dict[str, list[Any]] = {}
    for uid, obj in calls.seen:
        by_uid.setdefault(uid, []).append(obj)
    assert by_uid["old"][1] is None
    assert by_uid["new"] == [widget("new", rv="5")]


def test_workers_start_only_after_caches_and_handlers_sync() -> None:
    factory = FakeFactory()
    informer = factory.informer_for(WIDGETS)
    informer.synced = False
    calls = Calls()
    controller = Controller(factory, "Widget", calls)

    async def body() -> None:
        await wait_until(lambda: bool(informer.handlers))
        informer.emit(ObjectAdded(widget("u1")))  # part of the initial list
        await anyio.sleep(0.1)
        assert calls.uids() == [] and not controller.has_synced()
        assert len(controller.queue) == 1  # queued, waiting for the workers
        informer.synced = True
        informer.handlers[0].synced = False  # the cache is ready but our handler is still behind
        await anyio.sleep(0.1)
        assert calls.uids() == []
        informer.handlers[0].synced = True
        await wait_until(lambda: calls.uids() == ["u1"])

    run_controller(controller, body)


def test_sync_timeout_names_each_laggard_and_its_cause() -> None:
    factory = FakeFactory()
    stuck = factory.informer_for(WIDGETS)
    stuck.synced = False
    stuck.last_error = ForbiddenError("configmaps is forbidden", reason="Forbidden")
    never = factory.informer_for(CONFIGMAPS)
    never.synced, never.started = False, False
    controller = Controller(factory, "Widget", Calls(), triggers=[owns("v1/configmaps")], cache_sync_timeout=0.1)

    async def main() -> None:
        with pytest.raises(ControllerSyncTimeoutError) as caught:
            await controller.run()
        message = str(caught.value)
        assert "widgets.v1.example.com: ForbiddenError" in message
        assert "configmaps.v1: informer was never started" in message and "async with factory" in message
        assert caught.value.causes["widgets.v1.example.com"] is stuck.last_error
        assert controller.queue.shutting_down()
        with pytest.raises(ControllerStateError):
            await controller.run()

    anyio.run(main)


def test_owned_children_enqueue_their_controller_owner_and_get_the_owner_index() -> None:
    factory = FakeFactory()
    calls = Calls()
    controller = Controller(factory, "Widget", calls, triggers=[owns("v1/configmaps")])

    def child(owner_uid: str, rv: str = "1") -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": "w-config", "namespace": "ns", "uid": "c1", "resourceVersion": rv,
            "ownerReferences": [{"apiVersion": "example.com/v1", "kind": "Widget", "name": "w",
                                 "uid": owner_uid, "controller": True}]}}

    async def body() -> None:
        await controller.wait_synced(5)
        assert OWNER_UID_INDEX in factory.informers[CONFIGMAPS].store.index_names
        factory.informers[WIDGETS].emit(ObjectAdded(widget("u1")))
        await wait_until(lambda: calls.uids() == ["u1"])
        factory.informers[CONFIGMAPS].emit(ObjectUpdated(child("u1"), child("u1", rv="2")))
        await wait_until(lambda: calls.uids() == ["u1", "u1"])

    run_controller(controller, body)


def test_primary_predicates_filter_and_a_raising_mapper_is_counted_not_fatal() -> None:
    factory = FakeFactory()
    calls = Calls()

    def broken(obj: dict[str, Any]) -> list[str]:
        raise KeyError("spec.target")

    controller = Controller(factory, "Widget", calls, predicates=generation_changed,
                            triggers=[watches("v1/configmaps", broken)])

    async def body() -> None:
        await controller.wait_synced(5)
        widgets = factory.informers[WIDGETS]
        widgets.emit(ObjectAdded(widget("u1", rv="1", gen=1)))
        await wait_until(lambda: len(calls.seen) == 1)
        widgets.emit(ObjectUpdated(widget("u1", rv="1", gen=1), widget("u1", rv="2", gen=1)))  # status write
        factory.informers[CONFIGMAPS].emit(ObjectAdded({"metadata": {"name": "x", "uid": "c"}}))
        widgets.emit(ObjectUpdated(widget("u1", rv="2", gen=1), widget("u1", rv="3", gen=2)))  # spec change
        await wait_until(lambda: len(calls.seen) == 2)
        assert calls.seen[1][1]["metadata"]["resourceVersion"] == "3"

    run_controller(controller, body)
    stats = controller.statistics()
    assert (stats.notifications_total, stats.filtered_total, stats.mapping_errors_total) == (4, 1, 1)


def test_a_burst_of_updates_to_a_busy_key_collapses_and_the_last_call_sees_the_latest_state() -> None:
    factory = FakeFactory()
    gate = threading.Event()
    seen: list[int] = []

    def reconcile(request: Request, obj: Any, ctx: ReconcileContext) -> None:
        seen.append(obj["spec"]["size"])
        gate.wait(10)  # busy while the burst arrives

    controller = Controller(factory, "Widget", reconcile, rate_limiter=ItemExponentialRateLimiter(),
                            clock=FakeClock())

    async def body() -> None:
        await controller.wait_synced(5)
        widgets = factory.informers[WIDGETS]
        widgets.emit(ObjectAdded(widget("u1", size=0)))
        await wait_until(lambda: seen == [0])
        for size in range(1, 101):
            widgets.emit(ObjectUpdated(widget("u1", rv=str(size - 1), size=size - 1),
                                       widget("u1", rv=str(size), size=size)))
        gate.set()
        await wait_until(lambda: len(seen) == 2 and controller.queue.statistics().processing == 0)

    run_controller(controller, body)
    assert seen == [0, 100]
    assert controller.statistics().enqueued_total == 101


def test_triggers_are_fixed_once_running() -> None:
    factory = FakeFactory()
    controller = Controller(factory, "Widget", Calls())

    async def body() -> None:
        await controller.wait_synced(5)
        with pytest.raises(ControllerStateError):
            controller.add_trigger(owns("v1/configmaps"))

    run_controller(controller, body)
    with pytest.raises(TypeError):
        Controller(factory, "Widget", Calls(), triggers=["v1/configmaps"])  # type: ignore[list-item]


def test_key_filter_drops_other_shards_keys_before_the_queue_from_every_trigger() -> None:
    from controllers.sharding import Shard, ShardFilter

    factory = FakeFactory()
    shards = [Calls(), Calls()]
    filters = [ShardFilter(Shard(n, 2)) for n in range(2)]
    controllers = [Controller(factory, "Widget", calls, name=f"widget-{n}", key_filter=f,
                              triggers=[owns("v1/configmaps")])
                   for n, (calls, f) in enumerate(zip(shards, filters))]
    uids = [f"uid-{i}" for i in range(40)]

    def child(owner_uid: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": f"{owner_uid}-config", "namespace": "ns", "uid": f"c-{owner_uid}", "resourceVersion": "1",
            "ownerReferences": [{"apiVersion": "example.com/v1", "kind": "Widget", "name": "w",
                                 "uid": owner_uid, "controller": True}]}}

    async def main() -> None:
        async with anyio.create_task_group() as group:
            for controller in controllers:
                group.start_soon(controller.run)
            for controller in controllers:
                assert await controller.wait_synced(5)
            for uid in uids:
                factory.informers[WIDGETS].emit(ObjectAdded(widget(uid)))
            await wait_until(lambda: sum(len(c.uids()) for c in shards) == len(uids))
            for uid in uids:  # a child maps to its owner's key, which only the owner's shard keeps
                factory.informers[CONFIGMAPS].emit(ObjectAdded(child(uid)))
            await wait_until(lambda: sum(len(c.uids()) for c in shards) == 2 * len(uids))
            group.cancel_scope.cancel()

    anyio.run(main)
    seen = [set(c.uids()) for c in shards]
    assert seen[0] | seen[1] == set(uids) and not seen[0] & seen[1]
    for n, controller in enumerate(controllers):
        assert seen[n] == {u for u in uids if Shard(n, 2).keeps(u)}
        stats = controller.statistics()
        assert stats.enqueued_total == 2 * len(seen[n])  # only kept keys reach the queue
        assert filters[n].statistics().kept == 2 * len(seen[n])


def test_a_raising_key_filter_is_counted_as_a_mapping_error() -> None:
    factory = FakeFactory()
    calls = Calls()

    def broken(request: Request) -> bool:
        raise RuntimeError("bad filter")

    controller = Controller(factory, "Widget", calls, key_filter=broken)

    async def body() -> None:
        await controller.wait_synced(5)
        factory.informers[WIDGETS].emit(ObjectAdded(widget("u1")))
        await wait_until(lambda: controller.statistics().mapping_errors_total == 1)

    run_controller(controller, body)
    assert calls.uids() == [] and controller.statistics().enqueued_total == 0
