"""Controller wiring over ``InformerFactory(FakeCluster)``, on both anyio backends: keys enqueued by
UID from handler notifications, predicates, owner mapping and the owner index, workers held back
until sync (with a timeout naming the cause), delete + re-create as two keys, and a burst
collapsing into few calls. Tests that watch end with the caches equal to the cluster's objects."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator
from dataclasses import replace
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
from informers import _bridge
from informers._bridge import SUPPORTED_BACKENDS
from informers.clock import FakeClock
from informers.errors import ForbiddenError
from informers.factory import InformerFactory
from informers.handlers import HandlerRegistration
from informers.indexers import OWNER_UID_INDEX
from informers.resources import Resource
from informers.testing.fake import FakeCluster

from .conftest import FAST, assert_cache_matches, wait_until_async

pytestmark = pytest.mark.anyio


@pytest.fixture(params=SUPPORTED_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


WIDGETS = Resource("example.com", "v1", "widgets", "Widget", True)
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", True)


def widget_cluster() -> FakeCluster:
    cluster = FakeCluster()
    cluster.register(WIDGETS, status_subresource=True)
    return cluster


def widget(name: str = "w", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": spec,
    }


def uid(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["uid"])


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


@contextlib.asynccontextmanager
async def running(controller: Controller, factory: InformerFactory) -> AsyncIterator[None]:
    async with factory:
        async with anyio.create_task_group() as group:
            group.start_soon(controller.run)
            yield
            group.cancel_scope.cancel()


async def test_notifications_enqueue_uids_and_reconcile_resolves_from_the_primary_cache() -> None:
    cluster = widget_cluster()
    factory = InformerFactory(cluster, options=FAST)  # type: ignore[arg-type]
    calls = Calls()
    controller = Controller(factory, "Widget", calls)
    assert controller.name == "widget"

    async with running(controller, factory):
        assert await controller.wait_synced(5)
        made = cluster.create(WIDGETS, widget())
        await wait_until_async(lambda: calls.uids() == [uid(made)])
        assert calls.seen[0][1] == made
        informer = factory.informer_for(WIDGETS)
        await assert_cache_matches(cluster, informer)

    stats = controller.statistics()
    assert stats.synced and stats.notifications_total == 1 and stats.enqueued_total == 1
    assert stats.workers.success_total == 1
    assert informer.statistics().handlers == ()  # handlers removed on exit


async def test_delete_and_recreate_with_the_same_name_are_two_keys_and_the_old_one_sees_none() -> None:
    cluster = widget_cluster()
    factory = InformerFactory(cluster, options=FAST)  # type: ignore[arg-type]
    calls = Calls()
    controller = Controller(factory, "Widget", calls)

    async with running(controller, factory):
        await controller.wait_synced(5)
        old = cluster.create(WIDGETS, widget())
        await wait_until_async(lambda: calls.uids() == [uid(old)])
        cluster.delete(WIDGETS, "w", namespace="ns")
        new = cluster.create(WIDGETS, widget())
        await wait_until_async(lambda: len(calls.seen) == 3)
        await assert_cache_matches(cluster, factory.informer_for(WIDGETS))

    by_uid: dict[str, list[Any]] = {}
    for key, obj in calls.seen:
        by_uid.setdefault(key, []).append(obj)
    assert by_uid[uid(old)][1] is None
    assert by_uid[uid(new)] == [new]


async def test_workers_start_only_after_caches_and_handlers_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = widget_cluster()
    made = cluster.create(WIDGETS, widget())
    factory = InformerFactory(cluster, options=FAST)  # type: ignore[arg-type]
    held = cluster.hold("WATCH", "/api/v1/configmaps")  # the owned informer's initial list hangs
    widgets = factory.informer_for(WIDGETS)
    behind = _bridge.Flag()  # our handler on the synced primary cache is "still behind" until set
    add_handler = widgets.add_handler

    def lagging_add_handler(**kwargs: Any) -> HandlerRegistration:
        registration = add_handler(**kwargs)
        synced, wait_synced = registration.has_synced, registration.wait_synced

        async def wait_behind(timeout: float | None = None) -> bool:
            return await behind.wait(timeout) and await wait_synced(timeout)

        monkeypatch.setattr(registration, "has_synced", lambda: behind.is_set() and synced())
        monkeypatch.setattr(registration, "wait_synced", wait_behind)
        return registration

    monkeypatch.setattr(widgets, "add_handler", lagging_add_handler)
    calls = Calls()
    controller = Controller(factory, "Widget", calls, triggers=[owns("v1/configmaps")])

    async with running(controller, factory):
        assert await _bridge.to_thread(held.wait_held)
        await wait_until_async(lambda: widgets.has_synced() and len(controller.queue) == 1)
        stats = controller.statistics()
        assert calls.uids() == [] and not stats.synced and not stats.workers.running
        held.release()  # the caches are ready, but our handler is still behind
        configmaps = factory.informer_for(CONFIGMAPS)
        assert await configmaps.wait_synced(5)
        stats = controller.statistics()
        assert calls.uids() == [] and not stats.synced and not stats.workers.running  # queued, waiting
        behind.set()
        await wait_until_async(lambda: calls.uids() == [uid(made)])
        await assert_cache_matches(cluster, widgets)
        await assert_cache_matches(cluster, configmaps)


@pytest.mark.parametrize("anyio_backend", _bridge.SUPPORTED_BACKENDS)  # no worker runs: trio works today
async def test_sync_timeout_names_each_laggard_and_its_cause() -> None:
    cluster = widget_cluster()
    cluster.fail_next("GET", WIDGETS.path(), 403, times=10_000)
    # A long backoff keeps the first error the last one while the test looks at it.
    factory = InformerFactory(cluster, options=replace(FAST, backoff_initial=30.0, backoff_cap=60.0))  # type: ignore[arg-type]
    stuck = factory.informer_for(WIDGETS)  # started by hand below; the factory itself never runs
    controller = Controller(factory, "Widget", Calls(), triggers=[owns("v1/configmaps")], cache_sync_timeout=0.1)

    async with anyio.create_task_group() as group:
        group.start_soon(stuck.run)
        await wait_until_async(lambda: stuck.last_error is not None)
        with pytest.raises(ControllerSyncTimeoutError) as caught:
            await controller.run()
        group.cancel_scope.cancel()
    message = str(caught.value)
    assert "widgets.v1.example.com: ForbiddenError" in message
    assert "configmaps.v1: informer was never started" in message and "async with factory" in message
    assert caught.value.causes["widgets.v1.example.com"] is stuck.last_error
    assert isinstance(stuck.last_error, ForbiddenError)
    assert controller.queue.shutting_down()
    with pytest.raises(ControllerStateError):
        await controller.run()


async def test_owned_children_enqueue_their_controller_owner_and_get_the_owner_index() -> None:
    cluster = widget_cluster()
    factory = InformerFactory(cluster, options=FAST)  # type: ignore[arg-type]
    calls = Calls()
    controller = Controller(factory, "Widget", calls, triggers=[owns("v1/configmaps")])

    def child(owner_uid: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "w-config",
                "namespace": "ns",
                "ownerReferences": [
                    {
                        "apiVersion": "example.com/v1",
                        "kind": "Widget",
                        "name": "w",
                        "uid": owner_uid,
                        "controller": True,
                    }
                ],
            },
        }

    async with running(controller, factory):
        await controller.wait_synced(5)
        configmaps = factory.informer_for(CONFIGMAPS)
        assert OWNER_UID_INDEX in configmaps.store.index_names
        owner = uid(cluster.create(WIDGETS, widget()))
        await wait_until_async(lambda: calls.uids() == [owner])
        cluster.create(CONFIGMAPS, child(owner))
        await wait_until_async(lambda: calls.uids() == [owner, owner])
        assert configmaps.store.index_keys(OWNER_UID_INDEX, owner) == ["ns/w-config"]
        await assert_cache_matches(cluster, configmaps)
        await assert_cache_matches(cluster, factory.informer_for(WIDGETS))


async def test_primary_predicates_filter_and_a_raising_mapper_is_counted_not_fatal() -> None:
    cluster = widget_cluster()
    factory = InformerFactory(cluster, options=FAST)  # type: ignore[arg-type]
    calls = Calls()

    def broken(obj: dict[str, Any]) -> list[str]:
        raise KeyError("spec.target")

    controller = Controller(
        factory, "Widget", calls, predicates=generation_changed, triggers=[watches("v1/configmaps", broken)]
    )

    async with running(controller, factory):
        await controller.wait_synced(5)
        cluster.create(WIDGETS, widget(size=1))
        await wait_until_async(lambda: len(calls.seen) == 1)
        cluster.patch(WIDGETS, "w", {"status": {"ready": True}}, namespace="ns", subresource="status")
        cluster.create(CONFIGMAPS, {"metadata": {"name": "x", "namespace": "ns"}})
        resized = cluster.patch(WIDGETS, "w", {"spec": {"size": 2}}, namespace="ns")  # generation 2
        await wait_until_async(lambda: len(calls.seen) == 2 and controller.statistics().notifications_total == 4)
        assert calls.seen[1][1]["metadata"]["resourceVersion"] == resized["metadata"]["resourceVersion"]
        await assert_cache_matches(cluster, factory.informer_for(WIDGETS))

    stats = controller.statistics()
    assert (stats.notifications_total, stats.filtered_total, stats.mapping_errors_total) == (4, 1, 1)


async def test_a_burst_of_updates_to_a_busy_key_collapses_and_the_last_call_sees_the_latest_state() -> None:
    cluster = widget_cluster()
    factory = InformerFactory(cluster, options=FAST)  # type: ignore[arg-type]
    gate = threading.Event()
    seen: list[int] = []

    def reconcile(request: Request, obj: Any, ctx: ReconcileContext) -> None:
        seen.append(obj["spec"]["size"])
        gate.wait(10)  # busy while the burst arrives

    controller = Controller(factory, "Widget", reconcile, rate_limiter=ItemExponentialRateLimiter(), clock=FakeClock())

    async with running(controller, factory):
        await controller.wait_synced(5)
        widgets = factory.informer_for(WIDGETS)
        cluster.create(WIDGETS, widget(size=0))
        await wait_until_async(lambda: seen == [0])
        for size in range(1, 101):
            cluster.patch(WIDGETS, "w", {"spec": {"size": size}}, namespace="ns")
        # Inline handlers enqueue under the lock that updates the cache: once it shows the last
        # size, the whole burst is queued.
        await wait_until_async(lambda: (widgets.store.get("ns/w") or {}).get("spec", {}).get("size") == 100)
        gate.set()
        await wait_until_async(lambda: len(seen) == 2 and controller.queue.statistics().processing == 0)
        await assert_cache_matches(cluster, widgets)

    assert seen == [0, 100]
    assert controller.statistics().enqueued_total == 101


async def test_triggers_are_fixed_once_running() -> None:
    cluster = widget_cluster()
    factory = InformerFactory(cluster, options=FAST)  # type: ignore[arg-type]
    controller = Controller(factory, "Widget", Calls())

    async with running(controller, factory):
        await controller.wait_synced(5)
        with pytest.raises(ControllerStateError):
            controller.add_trigger(owns("v1/configmaps"))
        await assert_cache_matches(cluster, factory.informer_for(WIDGETS))
    with pytest.raises(TypeError):
        Controller(factory, "Widget", Calls(), triggers=["v1/configmaps"])  # type: ignore[list-item]


async def test_key_filter_drops_other_shards_keys_before_the_queue_from_every_trigger() -> None:
    from controllers.sharding import Shard, ShardFilter

    cluster = widget_cluster()
    factory = InformerFactory(cluster, options=FAST)  # type: ignore[arg-type]
    shards = [Calls(), Calls()]
    filters = [ShardFilter(Shard(n, 2)) for n in range(2)]
    controllers = [
        Controller(factory, "Widget", calls, name=f"widget-{n}", key_filter=f, triggers=[owns("v1/configmaps")])
        for n, (calls, f) in enumerate(zip(shards, filters, strict=True))
    ]

    async with factory, anyio.create_task_group() as group:
        for controller in controllers:
            group.start_soon(controller.run)
        for controller in controllers:
            assert await controller.wait_synced(5)
        made = [cluster.create(WIDGETS, widget(f"w{i}")) for i in range(40)]
        uids = [uid(w) for w in made]
        await wait_until_async(lambda: sum(len(c.uids()) for c in shards) == len(uids))
        for w in made:  # a child maps to its owner's key, which only the owner's shard keeps
            child = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": f"{w['metadata']['name']}-config",
                    "namespace": "ns",
                    "ownerReferences": [
                        {
                            "apiVersion": "example.com/v1",
                            "kind": "Widget",
                            "name": w["metadata"]["name"],
                            "uid": uid(w),
                            "controller": True,
                        }
                    ],
                },
            }
            cluster.create(CONFIGMAPS, child)
        await wait_until_async(lambda: sum(len(c.uids()) for c in shards) == 2 * len(uids))
        group.cancel_scope.cancel()

    seen = [set(c.uids()) for c in shards]
    assert seen[0] | seen[1] == set(uids) and not seen[0] & seen[1]
    for n, controller in enumerate(controllers):
        assert seen[n] == {u for u in uids if Shard(n, 2).keeps(u)}
        stats = controller.statistics()
        assert stats.enqueued_total == 2 * len(seen[n])  # only kept keys reach the queue
        assert filters[n].statistics().kept == 2 * len(seen[n])


async def test_a_raising_key_filter_is_counted_as_a_mapping_error() -> None:
    cluster = widget_cluster()
    factory = InformerFactory(cluster, options=FAST)  # type: ignore[arg-type]
    calls = Calls()

    def broken(request: Request) -> bool:
        raise RuntimeError("bad filter")

    controller = Controller(factory, "Widget", calls, key_filter=broken)
    async with running(controller, factory):
        await controller.wait_synced(5)
        cluster.create(WIDGETS, widget("u1"))
        await wait_until_async(lambda: controller.statistics().mapping_errors_total == 1)
    assert calls.uids() == [] and controller.statistics().enqueued_total == 0
