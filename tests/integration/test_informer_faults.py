"""Informer fault handling against a real apiserver: cut and stalled connections, an apiserver
restart, etcd compaction (410) while cut off, bookmarks, and 403/404 without hot loops.
Each test that watches ends by asserting the cache equals the server's list."""

from __future__ import annotations

import time

import anyio
import pytest

from informers.errors import ForbiddenError, NotFoundError, ResourceNotFoundError, StreamStalledError, SyncTimeoutError
from informers.factory import InformerFactory
from informers.informer import InformerOptions, SharedInformer
from informers.resources import Resource
from informers.testing import ControlPlane, FaultProxy

from .churn import Churn, create_configmaps, create_podtemplates
from .support import EventLog, api_client, wait_cache_equals_server, wait_for

pytestmark = pytest.mark.integration

CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", namespaced=True)
PODTEMPLATES = Resource("", "v1", "podtemplates", "PodTemplate", namespaced=True)


def test_connection_cut_mid_stream_resumes_from_last_resource_version_without_relist(
    control_plane: ControlPlane, namespace: str, fault_proxy: FaultProxy
):
    create_configmaps(control_plane, namespace, 20)
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with api_client(control_plane.kubeconfig(server=fault_proxy.url)) as client:
        informer = SharedInformer(
            client, CONFIGMAPS, namespace=namespace, options=InformerOptions(backoff_initial=0.1, backoff_cap=0.5)
        )
        log = EventLog()
        informer.add_handler(on_notification=log)
        informer.start()
        try:
            assert informer.wait_synced_blocking(30)
            churn = Churn(control_plane, namespace)  # writes go straight to the apiserver, not the proxy
            for _ in range(5):
                churn.run(15)
                # cut once the informer is back on a live watch (it has seen the latest write)
                wait_for(lambda: log.writes()[-1:] == churn.written[-1:], 20, "a live watch")
                assert fault_proxy.cut() >= 1
            churn.run(15)
            wait_for(lambda: log.writes() == churn.written, 30, "every write seen exactly once, in order")
            stats = informer.statistics().watcher
            assert stats.relists == 0, stats
            assert stats.watch_restarts["error"] == 5, stats  # each cut: one re-watch from the last RV
            assert stats.lists == 1
            wait_cache_equals_server(informer, control_plane, path)
        finally:
            informer.stop()


def test_stalled_connection_is_detected_within_the_idle_deadline_and_recovered(
    control_plane: ControlPlane, namespace: str, fault_proxy: FaultProxy
):
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    idle = 2.0
    with api_client(control_plane.kubeconfig(server=fault_proxy.url)) as client:
        informer = SharedInformer(
            client,
            CONFIGMAPS,
            namespace=namespace,
            options=InformerOptions(idle_timeout=idle, backoff_initial=0.1, backoff_cap=0.5),
        )
        log = EventLog()
        informer.add_handler(on_notification=log)
        informer.start()
        try:
            assert informer.wait_synced_blocking(30)
            wait_for(
                lambda: informer.statistics().watcher.state == "watching" and fault_proxy.statistics().active >= 1,
                10,
                "the watch to be open",
            )
            fault_proxy.stall()  # half-open: the connection stays up, nothing flows
            stalled_at = time.monotonic()
            churn = Churn(control_plane, namespace)
            churn.run(10)
            wait_for(
                lambda: informer.statistics().watcher.watch_restarts["stalled"] >= 1,
                idle + 10,
                "the stall to be detected",
            )
            detected_after = time.monotonic() - stalled_at
            assert isinstance(informer.last_error, StreamStalledError)
            assert detected_after < idle * 4, detected_after  # bounded by the deadline, not by the server timeout
            assert log.writes() == []  # nothing came through the stalled connection
            fault_proxy.pass_through()
            wait_for(lambda: log.writes() == churn.written, 30, "recovery delivers every write")
            assert informer.statistics().watcher.relists == 0
            wait_cache_equals_server(informer, control_plane, path)
        finally:
            informer.stop()


def test_apiserver_restart_during_churn_is_survived(control_plane: ControlPlane, namespace: str):
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    create_configmaps(control_plane, namespace, 30)
    with api_client(control_plane.admin_kubeconfig) as client:
        informer = SharedInformer(
            client, CONFIGMAPS, namespace=namespace, options=InformerOptions(backoff_initial=0.2, backoff_cap=1.0)
        )
        informer.start()
        try:
            assert informer.wait_synced_blocking(30)
            churn = Churn(control_plane, namespace, seed=11)
            churn.start(interval=0.02)
            time.sleep(1.0)
            control_plane.restart_apiserver(kill=True)  # a crash, mid-churn
            time.sleep(1.0)
            churn.stop()
            assert len(churn.written) > 10
            wait_cache_equals_server(informer, control_plane, path, timeout=60)
            stats = informer.statistics()
            assert stats.watcher.errors >= 1  # it noticed, and recovered
        finally:
            informer.stop()


def test_compaction_while_cut_off_forces_relist_and_gap_deletes_arrive_as_final_state_unknown(
    control_plane: ControlPlane, namespace: str, fault_proxy: FaultProxy
):
    # PodTemplates have no watch cache in the kit: a watch from a compacted revision gets 410.
    path = f"/api/v1/namespaces/{namespace}/podtemplates"
    create_podtemplates(control_plane, namespace, 10)
    with api_client(control_plane.kubeconfig(server=fault_proxy.url)) as client:
        informer = SharedInformer(
            client, PODTEMPLATES, namespace=namespace, options=InformerOptions(backoff_initial=0.1, backoff_cap=0.5)
        )
        log = EventLog()
        informer.add_handler(on_notification=log)
        informer.start()
        try:
            assert informer.wait_synced_blocking(30)
            fault_proxy.refuse()
            fault_proxy.cut()  # the informer is cut off and cannot reconnect
            gone = ["pt-00001", "pt-00004", "pt-00007"]
            for name in gone:
                control_plane.request_json("DELETE", f"{path}/{name}")
            control_plane.request_json(
                "POST",
                path,
                {
                    "apiVersion": "v1",
                    "kind": "PodTemplate",
                    "metadata": {"name": "born-in-gap"},
                    "template": {"spec": {"containers": [{"name": "c", "image": "x"}]}},
                },
            )
            control_plane.compact_etcd()
            fault_proxy.pass_through()
            wait_for(lambda: informer.statistics().watcher.relists >= 1, 30, "a relist after 410")
            wait_cache_equals_server(informer, control_plane, path)
            assert sorted(log.tombstones()) == sorted(f"{namespace}/{n}" for n in gone)
            stats = informer.statistics().watcher
            assert stats.relist_causes.get("gone", 0) >= 1 or stats.watch_restarts["gone"] >= 1, stats
        finally:
            informer.stop()


def test_bookmarks_advance_the_resource_version(control_plane: ControlPlane, namespace: str):
    with api_client(control_plane.admin_kubeconfig) as client:
        informer = SharedInformer(
            client, CONFIGMAPS, namespace=namespace, options=InformerOptions(watch_timeout_range=(6, 7))
        )
        informer.start()
        try:
            assert informer.wait_synced_blocking(30)
            start = informer.statistics().watcher
            start_rv = int(start.last_resource_version or 0)
            start_bookmarks = start.events["BOOKMARK"]  # a streaming list ends with one already
            # Bookmarks come only once the type's resourceVersion moved past the watch's: write
            # ConfigMaps elsewhere (this informer sees none of them), then wait out the short watch.
            other = "/api/v1/namespaces/default/configmaps"
            name = f"bookmark-bump-{namespace}"[:60]
            created = control_plane.request_json("POST", other, {"metadata": {"name": name}})
            wait_for(lambda: informer.statistics().watcher.events["BOOKMARK"] > start_bookmarks, 30, "a bookmark")
            stats = informer.statistics().watcher
            assert int(stats.last_resource_version) >= int(created["metadata"]["resourceVersion"]) > start_rv
            assert len(informer.store) == 0  # the bookmark moved the position, not the cache
            control_plane.request_json("DELETE", f"{other}/{name}")
            wait_cache_equals_server(informer, control_plane, f"/api/v1/namespaces/{namespace}/configmaps")
        finally:
            informer.stop()


def test_forbidden_and_unknown_resources_give_clear_errors_and_back_off(control_plane: ControlPlane, namespace: str):
    async def main() -> None:
        kubeconfig = control_plane.user_kubeconfig("nobody", ["no-rights"])
        with api_client(kubeconfig) as client:
            factory = InformerFactory(
                client, namespace=namespace, options=InformerOptions(backoff_initial=0.5, backoff_cap=30)
            )
            secrets = factory.informer_for(Resource("", "v1", "secrets", "Secret", namespaced=True))
            async with factory:
                started = time.monotonic()
                with pytest.raises(SyncTimeoutError) as info:
                    await factory.wait_synced(timeout=4)
                elapsed = time.monotonic() - started
            message = str(info.value)
            assert "secrets" in message and "ForbiddenError" in message and "nobody" in message
            assert isinstance(info.value.causes[secrets.name], ForbiddenError)
            lists = client.statistics().requests
            attempts = sum(n for (method, code), n in lists.items() if method == "GET")
            # backoff 0.5, 1, 2 (+ jitter): a handful of attempts in ~4 s, not a hot loop
            assert 2 <= attempts <= 6, (attempts, elapsed)
            assert not secrets.has_synced()

    anyio.run(main)

    with api_client(control_plane.admin_kubeconfig) as client:
        factory = InformerFactory(client)
        with pytest.raises(ResourceNotFoundError) as unknown:
            factory.resolve_blocking("nothing.example.com/v1/widgets")
        assert "widgets" in str(unknown.value)
        # A hand-built Resource that the server does not serve: 404 on LIST, backed off, no crash.
        ghost = SharedInformer(
            client,
            Resource("nothing.example.com", "v1", "ghosts", "Ghost", True),
            options=InformerOptions(backoff_initial=0.5),
        )
        ghost.start()
        try:
            wait_for(lambda: ghost.last_error is not None, 10, "the 404")
            assert isinstance(ghost.last_error, NotFoundError)
            time.sleep(2)
            assert ghost.statistics().reflector.backoffs <= 4
            assert not ghost.has_synced()
        finally:
            ghost.stop()
