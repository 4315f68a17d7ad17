"""Malformed watch events from a real apiserver stream (injected by a proxy): the informer restarts
the watch from the last good resourceVersion, loses nothing, and ends with cache == server."""

from __future__ import annotations

import pytest

from informers.informer import InformerOptions, SharedInformer
from informers.resources import Resource
from informers.testing import ControlPlane

from .churn import Churn
from .injecting_proxy import InjectingProxy
from .support import EventLog, api_client, wait_cache_equals_server, wait_for

pytestmark = pytest.mark.integration

CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", namespaced=True)

GARBAGE = [
    b"{not json at all",
    b'{"type":"ADDED"}',  # no object
    b'{"type":"MODIFIED","object":{"kind":"ConfigMap","metadata":"oops"}}',  # metadata not a map
    b'"a string, not an event"',
    b'{"type":"WHATEVER","object":{"kind":"ConfigMap","metadata":{"name":"x","resourceVersion":"1"}}}',
]


def test_malformed_events_restart_the_watch_from_the_last_good_version(
    control_plane: ControlPlane, namespace: str, tmp_path
):
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with InjectingProxy(control_plane) as proxy, api_client(proxy.kubeconfig(tmp_path)) as client:
        informer = SharedInformer(
            client, CONFIGMAPS, namespace=namespace, options=InformerOptions(backoff_initial=0.05, backoff_cap=0.2)
        )
        log = EventLog()
        informer.add_handler(on_notification=log)
        informer.start()
        try:
            assert informer.wait_synced_blocking(30)
            churn = Churn(control_plane, namespace, seed=3)
            for garbage in GARBAGE:
                churn.run(5)
                wait_for(lambda: log.writes() == churn.written, 20, "a live watch")
                proxy.inject(garbage)
                churn.run(5)  # the injected line goes out right before these events
                wait_for(lambda: log.writes() == churn.written, 20, "recovery after a malformed event")
            stats = informer.statistics().watcher
            assert proxy.injected == len(GARBAGE)
            assert stats.watch_restarts["malformed"] == len(GARBAGE), stats
            assert stats.relists == 0
            assert {
                n.obj["metadata"].get("name") for n in log.snapshot() if hasattr(n, "obj") and isinstance(n.obj, dict)
            }.isdisjoint({"x"})
            wait_cache_equals_server(informer, control_plane, path)
        finally:
            informer.stop()
