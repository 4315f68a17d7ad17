"""InformerFactory through the fake kit, on both anyio backends: one shared informer per
(resource, namespace, selectors); resource names and kinds resolved through discovery on a worker
thread while the loop keeps running; informers created in a running factory start at once;
``wait_synced`` naming each laggard and its cause; and ``factory.blocking()`` used from a thread.
Each test that watches ends with the caches equal to the cluster's objects."""

from __future__ import annotations

import anyio
import pytest

from informers import _bridge
from informers.errors import ForbiddenError, ResourceNotFoundError, SyncTimeoutError
from informers.events import Notification
from informers.factory import InformerFactory
from informers.resources import Resource
from informers.testing.fake import FakeCluster

from .conftest import FAST, assert_cache_matches, assert_cache_matches_blocking, wait_until, wait_until_async

DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment", namespaced=True)
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", namespaced=True)


def cm(name: str, ns: str = "ns", **labels: str) -> dict[str, object]:
    return {"metadata": {"name": name, "namespace": ns, "labels": labels}}


@pytest.mark.anyio
async def test_one_shared_informer_per_resource_namespace_and_selectors() -> None:
    cluster = FakeCluster()
    cluster.create(CONFIGMAPS, cm("a", app="web"))
    cluster.create(CONFIGMAPS, cm("b", ns="other"))
    async with InformerFactory(cluster, options=FAST) as factory:  # type: ignore[arg-type]
        everywhere = await factory.informer("v1/configmaps")
        assert await factory.informer(CONFIGMAPS) is everywhere
        assert await factory.informer("ConfigMap") is everywhere
        assert await factory.informer("v1/ConfigMap") is everywhere
        in_ns = await factory.informer("v1/configmaps", namespace="ns")
        web = await factory.informer("v1/configmaps", namespace="ns", label_selector="app=web")
        assert len({id(everywhere), id(in_ns), id(web)}) == 3 and len(factory.informers) == 3
        await factory.wait_synced(5)
        cluster.create(CONFIGMAPS, cm("c", app="web"))
        for informer in factory.informers:
            await assert_cache_matches(cluster, informer)
        assert sorted(everywhere.store.keys()) == ["ns/a", "ns/c", "other/b"]
        assert sorted(web.store.keys()) == ["ns/a", "ns/c"]
    watches = [r for r in cluster.requests if r.verb == "WATCH"]
    assert len(watches) == 3  # one watch per informer, however many consumers asked


@pytest.mark.anyio
async def test_kinds_resolve_through_discovery_without_blocking_the_loop() -> None:
    cluster = FakeCluster()
    cluster.create(DEPLOYMENTS, {"metadata": {"name": "d", "namespace": "ns"}, "spec": {"replicas": 1}})
    hold = cluster.hold("GET", "/apis")  # the discovery document of the API groups hangs
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.sleep(0.001)

    async with InformerFactory(cluster, options=FAST) as factory:  # type: ignore[arg-type]
        found: list[object] = []

        async def resolve() -> None:
            found.append(await factory.informer("Deployment"))

        async with anyio.create_task_group() as group:
            group.start_soon(tick)
            group.start_soon(resolve)
            assert await _bridge.to_thread(hold.wait_held)
            before = ticks
            await wait_until_async(lambda: ticks >= before + 5)  # the loop runs while discovery waits
            assert found == []
            hold.release()
            await wait_until_async(lambda: bool(found))
            group.cancel_scope.cancel()
        (informer,) = found
        assert informer is await factory.informer("apps/v1/Deployment")
        assert informer is await factory.informer("apps/v1/deployments")
        assert informer.resource == DEPLOYMENTS  # type: ignore[attr-defined]
        with pytest.raises(ResourceNotFoundError, match="Gizmo"):
            await factory.informer("Gizmo")
        await factory.wait_synced(5)
        await assert_cache_matches(cluster, informer)  # type: ignore[arg-type]
    assert factory.discovery.statistics().aggregated is True


@pytest.mark.anyio
async def test_an_informer_created_in_a_running_factory_starts_at_once() -> None:
    cluster = FakeCluster()
    async with InformerFactory(cluster, options=FAST) as factory:  # type: ignore[arg-type]
        first = await factory.informer("v1/configmaps")
        await factory.wait_synced(5)
        cluster.register(Resource("example.com", "v1", "widgets", "Widget", namespaced=True))
        cluster.create("widgets", {"metadata": {"name": "w", "namespace": "ns"}})
        later = await _bridge.to_thread(factory.resolve_blocking, "example.com/v1/Widget")
        widgets = factory.informer_for(later)  # a CRD registered after the first discovery
        assert await widgets.wait_synced(5) and first.has_synced()
        await assert_cache_matches(cluster, widgets)
        await assert_cache_matches(cluster, first)


@pytest.mark.anyio
async def test_wait_synced_raises_naming_the_laggard_and_its_cause() -> None:
    cluster = FakeCluster()
    cluster.create(CONFIGMAPS, cm("a"))
    cluster.fail_next("GET", "/api/v1/secrets", 403, times=10_000)  # lists and watches alike
    async with InformerFactory(cluster, options=FAST) as factory:  # type: ignore[arg-type]
        configmaps = await factory.informer("v1/configmaps")
        secrets = await factory.informer("v1/secrets")
        await wait_until_async(lambda: isinstance(secrets.last_error, ForbiddenError) and configmaps.has_synced())
        with pytest.raises(SyncTimeoutError) as caught:
            await factory.wait_synced(0.01)
        await assert_cache_matches(cluster, configmaps)
    message = str(caught.value)
    assert "1 informer(s) not synced" in message and "secrets.v1: ForbiddenError" in message
    assert "configmaps" not in message
    assert set(caught.value.causes) == {"secrets.v1"}
    assert isinstance(caught.value.causes["secrets.v1"], ForbiddenError)


def test_the_blocking_factory_works_from_a_thread() -> None:
    cluster = FakeCluster()
    cluster.create(CONFIGMAPS, cm("a"))
    seen: list[Notification] = []
    with InformerFactory(cluster, options=FAST).blocking() as factory:  # type: ignore[arg-type]
        informer = factory.informer("v1/configmaps", namespace="ns")
        assert factory.informer(CONFIGMAPS, namespace="ns") is informer
        informer.add_handler(on_notification=seen.append)
        factory.wait_synced(5)
        cluster.create(CONFIGMAPS, cm("b"))
        assert_cache_matches_blocking(cluster, informer)
        wait_until(lambda: len(seen) == 2)  # delivered before the block ends (then delivery stops)
        with pytest.raises(SyncTimeoutError):
            cluster.fail_next("GET", "/api/v1/secrets", 403, times=10_000)
            factory.informer("v1/secrets")
            factory.wait_synced(0.01)
        assert factory.informers[0] is informer
    assert sorted(note.obj["metadata"]["name"] for note in seen) == ["a", "b"]  # type: ignore[union-attr]
    assert cluster.open_watches == 0  # leaving the block stopped every informer
