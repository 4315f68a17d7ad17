"""Shared informers against a real apiserver: paginated sync, sharing, late and raising handlers,
indexes under concurrency, a CRD, and a streaming initial list. Each test ends with cache == server."""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import pytest

from informers.events import ObjectAdded
from informers.factory import InformerFactory
from informers.indexers import index_by_label
from informers.informer import InformerOptions, SharedInformer
from informers.testing import ControlPlane

from .churn import Churn, create_configmaps, create_podtemplates
from .support import EventLog, api_client, cache_state, wait_cache_equals_server, wait_for

pytestmark = pytest.mark.integration


def test_1200_objects_sync_through_pagination_and_consumers_share_one_watch(
    control_plane: ControlPlane, namespace: str
):
    # PodTemplates are served from etcd in the kit (no watch cache), so the LIST is really paginated;
    # a cached type answers resourceVersion=0 lists from memory in one piece, as for client-go.
    create_podtemplates(control_plane, namespace, 1200)
    path = f"/api/v1/namespaces/{namespace}/podtemplates"

    async def main() -> None:
        with api_client(control_plane.admin_kubeconfig) as client:
            pages = InformerOptions(streaming_list=False)  # LIST pages, not the streaming list
            async with InformerFactory(client, namespace=namespace, options=pages) as factory:
                first = await factory.informer("v1/podtemplates")
                second = await factory.informer("PodTemplate")  # by kind, through discovery: the same informer
                assert first is second
                log_a, log_b = EventLog(), EventLog()
                first.add_handler(on_notification=log_a)
                second.add_handler(on_notification=log_b)
                await factory.wait_synced(60)
                stats = first.statistics()
                assert stats.watcher.list_pages == 3  # 500 + 500 + 200
                assert stats.objects == 1200
                await anyio.to_thread.run_sync(
                    wait_for, lambda: len(log_a.snapshot()) == 1200 and len(log_b.snapshot()) == 1200, 30, "handlers"
                )
                assert all(isinstance(n, ObjectAdded) and n.in_initial_list for n in log_a.snapshot())
                control_plane.request_json("DELETE", f"{path}/pt-00007")
                await anyio.to_thread.run_sync(wait_cache_equals_server, first, control_plane, path)
                assert client.statistics().open_watches == 1  # two consumers, one watch
                assert first.statistics().watcher.watch_requests == 1

    anyio.run(main)


def test_handler_added_after_sync_gets_every_cached_object_and_a_raising_handler_disturbs_no_other(
    control_plane: ControlPlane, namespace: str
):
    create_configmaps(control_plane, namespace, 50)
    path = f"/api/v1/namespaces/{namespace}/configmaps"

    async def main() -> None:
        with api_client(control_plane.admin_kubeconfig) as client:
            async with InformerFactory(client, namespace=namespace) as factory:
                informer = await factory.informer("v1/configmaps")
                calls = {"n": 0}

                def explode(note: object) -> None:
                    calls["n"] += 1
                    raise RuntimeError("plugin bug")

                bad = informer.add_handler(on_notification=explode, name="explodes")
                await factory.wait_synced(30)
                late_sync, late_async = EventLog(), EventLog()

                async def async_handler(note: object) -> None:
                    late_async(note)  # type: ignore[arg-type]

                h1 = informer.add_handler(on_notification=late_sync, name="late-sync")
                h2 = informer.add_handler(on_notification=async_handler, name="late-async")
                assert await h1.wait_synced(10) and await h2.wait_synced(10)
                for log in (late_sync, late_async):
                    replay = log.snapshot()
                    assert {f"{namespace}/{n.obj['metadata']['name']}" for n in replay} == set(cache_state(informer))
                    assert len(replay) == 50 and all(n.in_initial_list for n in replay)
                churn = Churn(control_plane, namespace)
                # blocking work goes to a thread: the event loop must stay free for the async handler
                await anyio.to_thread.run_sync(churn.run, 40)
                await anyio.to_thread.run_sync(
                    wait_for, lambda: late_sync.writes() == churn.written, 20, "late handler sees every write"
                )
                await anyio.to_thread.run_sync(
                    wait_for, lambda: late_async.writes() == churn.written, 20, "async handler sees every write"
                )
                await anyio.to_thread.run_sync(
                    wait_for,
                    lambda: bad.statistics().delivered == 50 + len(churn.written),
                    60,
                    "raising handler drained",
                )
                stats = bad.statistics()
                assert stats.errors == calls["n"] == 50 + len(churn.written)  # every call raised, none was lost
                assert stats.last_error and "plugin bug" in stats.last_error
                await anyio.to_thread.run_sync(wait_cache_equals_server, informer, control_plane, path)

    anyio.run(main)


def test_a_slow_handler_does_not_block_the_watch_or_other_handlers(control_plane: ControlPlane, namespace: str):
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    release = threading.Event()
    with api_client(control_plane.admin_kubeconfig) as client:
        informer = SharedInformer(client, _configmaps(client), namespace=namespace)
        slow = informer.add_handler(on_add=lambda obj: release.wait(60), name="slow")
        fast = EventLog()
        informer.add_handler(on_notification=fast, name="fast")
        informer.start()
        try:
            assert informer.wait_synced_blocking(30)
            churn = Churn(control_plane, namespace)
            churn.run(30)
            wait_for(lambda: fast.writes() == churn.written, 20, "fast handler keeps up")
            wait_cache_equals_server(informer, control_plane, path)
            assert slow.statistics().pending > 0  # the slow one is behind, on its own buffer
        finally:
            release.set()
            informer.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("informer") and t.is_alive()]


def _configmaps(client):  # type: ignore[no-untyped-def]
    from informers.resources import Discovery

    return Discovery(client).resolve("", "v1", "configmaps")


def test_indexes_stay_correct_under_concurrent_readers_and_a_writer(control_plane: ControlPlane, namespace: str):
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    base = f"{path}"
    for i in range(60):
        control_plane.request_json("POST", base, {"metadata": {"name": f"ix-{i}", "labels": {"app": f"a{i % 3}"}}})
    with api_client(control_plane.admin_kubeconfig) as client:
        informer = SharedInformer(
            client, _configmaps(client), namespace=namespace, indexers={"app": index_by_label("app")}
        )
        informer.start()
        assert informer.wait_synced_blocking(30)
        problems: list[str] = []
        stop = threading.Event()

        def reader() -> None:
            while not stop.is_set():
                for app in ("a0", "a1", "a2", "a3"):
                    for obj in informer.store.by_index("app", app):
                        if obj["metadata"].get("labels", {}).get("app") != app:
                            problems.append(f"{obj['metadata']['name']} filed under app={app}")
                    for key in informer.store.index_keys("app", app):
                        if informer.store.get(key) is None and key in informer.store:
                            problems.append(f"dangling index key {key}")

        readers = [threading.Thread(target=reader) for _ in range(3)]
        for t in readers:
            t.start()
        try:
            for round_ in range(120):  # relabel objects while the readers run
                name = f"ix-{round_ % 60}"
                obj = control_plane.request_json("GET", f"{base}/{name}")
                obj["metadata"]["labels"]["app"] = f"a{(round_ + 1) % 4}"
                control_plane.request_json("PUT", f"{base}/{name}", obj)
            wait_cache_equals_server(informer, control_plane, path)
        finally:
            stop.set()
            for t in readers:
                t.join()
            informer.stop()
        assert problems == []
        server = control_plane.request_json("GET", path)["items"]
        for app in ("a0", "a1", "a2", "a3"):
            expected = sorted(
                f"{namespace}/{o['metadata']['name']}" for o in server if o["metadata"]["labels"]["app"] == app
            )
            assert sorted(informer.store.index_keys("app", app)) == expected


def test_a_crd_created_in_the_test_is_watched_like_a_builtin(control_plane: ControlPlane, namespace: str):
    group = f"t{int(time.time() * 1000) % 10**8}.example.com"
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
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }
            ],
        },
    }
    with api_client(control_plane.admin_kubeconfig) as client:
        factory = InformerFactory(client, namespace=namespace)
        factory.discovery.resolve("", "v1", "configmaps")  # warm the discovery cache before the CRD exists
        control_plane.request_json("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        path = f"/apis/{group}/v1/namespaces/{namespace}/widgets"

        def served() -> bool:
            return control_plane.request("GET", path)[0] == 200

        wait_for(served, 30, "CRD served")
        control_plane.request_json(
            "POST",
            path,
            {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 1}},
        )
        informer = factory.informer_for(
            factory.resolve_blocking(f"{group}/v1/Widget")
        )  # by kind: discovery refreshes on the miss
        log = EventLog()
        informer.add_handler(on_notification=log)
        informer.start()
        try:
            assert informer.wait_synced_blocking(30)
            created = control_plane.request_json(
                "POST",
                path,
                {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w2"}, "spec": {"size": 2}},
            )
            wait_for(lambda: ("ADDED", "w2", created["metadata"]["resourceVersion"]) in log.writes(), 20, "w2 event")
            wait_cache_equals_server(informer, control_plane, path)
        finally:
            informer.stop()


def test_streaming_initial_list_fills_the_cache_without_list_pages(control_plane: ControlPlane, namespace: str):
    create_configmaps(control_plane, namespace, 30)
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with api_client(control_plane.admin_kubeconfig) as client:
        informer = SharedInformer(
            client, _configmaps(client), namespace=namespace, options=InformerOptions(streaming_list=True)
        )
        informer.start()
        try:
            assert informer.wait_synced_blocking(30)
            stats = informer.statistics().watcher
            assert stats.streaming_list_fallback_reason is None
            assert stats.list_pages == 0 and stats.syncs == 1
            assert len(informer.store) == 30
            Churn(control_plane, namespace).run(10)
            wait_cache_equals_server(informer, control_plane, path)
        finally:
            informer.stop()


def test_resync_reaches_only_the_handlers_that_asked_and_removed_handlers_stop_receiving(
    control_plane: ControlPlane, namespace: str
):
    create_configmaps(control_plane, namespace, 5)
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with api_client(control_plane.admin_kubeconfig) as client:
        informer = SharedInformer(client, _configmaps(client), namespace=namespace)
        resyncing, quiet, removed = EventLog(), EventLog(), EventLog()
        informer.add_handler(on_notification=resyncing, resync_period=1.0, name="resyncing")
        informer.add_handler(on_notification=quiet, name="quiet")
        gone = informer.add_handler(on_notification=removed, name="removed")
        informer.start()
        try:
            assert informer.wait_synced_blocking(30)
            wait_for(lambda: len(removed.snapshot()) == 5, 10, "initial adds")
            informer.remove_handler(gone)
            wait_for(lambda: gone.stopped, 5, "the removed handler's delivery to end")
            wait_for(
                lambda: sum(1 for n in resyncing.snapshot() if getattr(n, "is_resync", False)) >= 10,
                10,
                "two rounds of resync",
            )
            resyncs = [n for n in resyncing.snapshot() if getattr(n, "is_resync", False)]
            assert all(n.old == n.new for n in resyncs)
            assert not any(getattr(n, "is_resync", False) for n in quiet.snapshot())
            Churn(control_plane, namespace).run(5)
            wait_cache_equals_server(informer, control_plane, path)
            wait_for(lambda: len(quiet.writes()) == 5, 10, "the quiet handler's notifications")
            assert len(removed.snapshot()) == 5  # nothing after removal
        finally:
            informer.stop()


def test_label_selector_scoping_and_a_cluster_scoped_resource(control_plane: ControlPlane, namespace: str):
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    for i in range(6):
        control_plane.request_json(
            "POST", path, {"metadata": {"name": f"sel-{i}", "labels": {"tier": "web" if i % 2 else "db"}}}
        )
    with api_client(control_plane.admin_kubeconfig) as client:
        with InformerFactory(client).blocking() as factory:  # the thread form: no event loop here
            web = factory.informer("v1/configmaps", namespace=namespace, label_selector="tier=web")
            namespaces = factory.informer("v1/namespaces")  # cluster-scoped
            log = EventLog()
            web.add_handler(on_notification=log)
            assert web.wait_synced_blocking(30) and namespaces.wait_synced_blocking(30)
            assert sorted(o["metadata"]["name"] for o in web.store.list()) == ["sel-1", "sel-3", "sel-5"]
            assert namespaces.store.get(namespace) is not None  # cluster-scoped key: the bare name
            # An object that stops matching the selector leaves the cache (the server sends a DELETED).
            obj = control_plane.request_json("GET", f"{path}/sel-1")
            obj["metadata"]["labels"]["tier"] = "db"
            control_plane.request_json("PUT", f"{path}/sel-1", obj)
            wait_for(lambda: ("DELETED", "sel-1", None) in log.writes(), 20, "sel-1 to leave the selection")
            assert web.store.get(f"{namespace}/sel-1") is None
            server = control_plane.request_json("GET", f"{path}?labelSelector=tier%3Dweb")["items"]
            assert sorted(o["metadata"]["name"] for o in server) == sorted(
                o["metadata"]["name"] for o in web.store.list()
            )


@pytest.mark.parametrize("streaming", [True, False], ids=["streaming-list", "list-pages"])
@pytest.mark.parametrize("strip", [True, False], ids=["strip-managed-fields", "no-transform"])
def test_the_initial_list_stores_objects_without_a_dict_and_they_equal_the_servers(
    control_plane: ControlPlane, namespace: str, monkeypatch: pytest.MonkeyPatch, streaming: bool, strip: bool
):
    """The initial list's fast path (informers._listbody.parse_item) keeps the server's JSON minus
    managedFields: every cached object must still equal the server's, field for field."""
    import informers._listbody
    import informers._reflector
    from informers.objects import strip_managed_fields

    create_configmaps(control_plane, namespace, 40)
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    module = informers._reflector if streaming else informers._listbody
    taken: list[str] = []
    real = module.parse_item

    def counting(*args: Any, **kwargs: Any) -> Any:
        item = real(*args, **kwargs)
        if item is not None:
            taken.append(item.key)
        return item

    monkeypatch.setattr(module, "parse_item", counting)
    with api_client(control_plane.admin_kubeconfig) as client:
        informer = SharedInformer(
            client,
            _configmaps(client),
            namespace=namespace,
            transform=strip_managed_fields if strip else None,
            options=InformerOptions(streaming_list=streaming, page_size=15),
        )
        informer.start()
        try:
            assert informer.wait_synced_blocking(30)
            pages = informer.statistics().watcher.list_pages
            assert pages == 0 if streaming else pages >= 1  # a cached type's RV=0 list comes in one piece
            server = control_plane.request_json("GET", path)
            expected = {}
            for obj in server["items"]:
                obj.setdefault("kind", "ConfigMap")
                obj.setdefault("apiVersion", "v1")
                if strip:
                    obj["metadata"].pop("managedFields", None)
                expected[f"{namespace}/{obj['metadata']['name']}"] = obj
            assert sorted(taken) == sorted(expected)  # every object took the fast path
            assert {f"{namespace}/{o['metadata']['name']}": o for o in informer.store.list()} == expected
            assert len(informer.store.by_index("namespace", namespace)) == 40
            some_uid = next(iter(expected.values()))["metadata"]["uid"]
            assert informer.store.get_by_uid(some_uid) is not None
        finally:
            informer.stop()
