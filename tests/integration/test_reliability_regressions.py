"""Regression tests for defects an outside chaos and hostile-input run found, each against the
real control plane (issue 10)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from controllers.circuit import CircuitState
from controllers.writer import ApiWriter, WriterOptions
from informers.client import ApiClient
from informers.config import load_config
from informers.errors import RequestTooLargeError
from informers.resources import Resource
from informers.testing import ControlPlane

pytestmark = pytest.mark.integration

PODTEMPLATES = Resource("", "v1", "podtemplates", "PodTemplate", namespaced=True)


@pytest.fixture
def writer(control_plane: ControlPlane) -> Iterator[ApiWriter]:
    client = ApiClient(load_config(str(control_plane.admin_kubeconfig)))
    api = ApiWriter(client, WriterOptions(field_manager="informerd-tests"))
    try:
        yield api
    finally:
        api.close()
        client.close()


def podtemplate(name: str, env_bytes: int = 10) -> dict[str, Any]:
    container = {"name": "c", "image": "i", "env": [{"name": "X", "value": "x" * env_bytes}]}
    return {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": {"name": name},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [container]}},
    }


def test_oversized_objects_are_refused_once_and_never_open_the_groups_circuit(writer: ApiWriter, namespace: str):
    """Defect 4: etcd's "request is too large" (objects of 1.5-3 MB) came back as a retryable 500,
    was retried, and counted against the breaker until a normal create in the group was shed."""
    before = writer.statistics().attempts
    for i in range(12):
        with pytest.raises(RequestTooLargeError, match="request is too large"):
            writer.create(PODTEMPLATES, podtemplate(f"big-{i}", int(1.8 * 1024 * 1024)), namespace=namespace)
    assert writer.statistics().attempts - before == 12  # one request each: no retries
    assert writer.breaker.state("v1") is CircuitState.CLOSED
    small = writer.create(PODTEMPLATES, podtemplate("small"), namespace=namespace)
    assert small["metadata"]["name"] == "small"


def _grant(plane: ControlPlane, namespace: str, user: str, verbs: list[str]) -> None:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": f"{user}-cm", "namespace": namespace},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": verbs}],
    }
    path = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles"
    status, _ = plane.request("PUT", f"{path}/{user}-cm", role)
    if status == 404:
        plane.request_json("POST", path, role)
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": f"{user}-cm", "namespace": namespace},
        "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"{user}-cm"},
    }
    plane.request("POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings", binding)


def test_a_user_who_may_list_but_not_watch_keeps_a_fresh_cache_and_recovers_when_granted(
    control_plane: ControlPlane, namespace: str
):
    """Defect 1: after a 403 on the watch the informer only re-watched: a stale cache forever."""
    from informers.informer import InformerOptions, SharedInformer

    from .support import api_client, wait_cache_equals_server, wait_for

    configmaps = Resource("", "v1", "configmaps", "ConfigMap", namespaced=True)
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    user = f"lister-{namespace[-6:]}"
    _grant(control_plane, namespace, user, ["get", "list"])
    with api_client(control_plane.user_kubeconfig(user)) as client:
        informer = SharedInformer(
            client, configmaps, namespace=namespace, options=InformerOptions(backoff_initial=0.2, backoff_cap=1.0)
        )
        informer.start()
        try:
            assert informer.wait_synced_blocking(30)
            control_plane.request_json("POST", path, {"metadata": {"name": "after-sync"}})
            wait_cache_equals_server(informer, control_plane, path)  # the relists bring it in
            stats = informer.statistics().watcher
            assert stats.relist_causes.get("watch-refused", 0) >= 1
            assert stats.watch_failing_since is not None and "Forbidden" in (stats.last_error or "")
            assert stats.streaming_list  # a 403 is not "the server cannot stream"
            _grant(control_plane, namespace, user, ["get", "list", "watch"])
            wait_for(lambda: informer.statistics().watcher.watch_failing_since is None, 30, "a working watch")
            control_plane.request_json("POST", path, {"metadata": {"name": "after-grant"}})
            wait_cache_equals_server(informer, control_plane, path)
        finally:
            informer.stop()


@pytest.mark.parametrize("streaming", [False, True], ids=["list", "streaming-watch-awaiting-headers"])
def test_stop_aborts_a_request_stalled_on_a_half_open_connection(
    control_plane: ControlPlane, namespace: str, fault_proxy: Any, streaming: bool
):
    """Defect 3: stop() returned after 10 s with the reflector thread still blocked in a LIST (up to
    the 60 s read timeout) or in a watch waiting for its headers (up to the 330-630 s idle deadline)."""
    import threading
    import time

    from informers.informer import InformerOptions, SharedInformer

    from .support import api_client, wait_for

    configmaps = Resource("", "v1", "configmaps", "ConfigMap", namespaced=True)
    with api_client(control_plane.kubeconfig(server=fault_proxy.url)) as client:
        informer = SharedInformer(
            client, configmaps, namespace=namespace, options=InformerOptions(streaming_list=streaming)
        )
        fault_proxy.stall()  # connections accepted, bytes never forwarded: a half-open peer
        informer.start()
        wait_for(lambda: fault_proxy.statistics().active >= 1, 10, "the request on the stalled connection")
        time.sleep(0.5)  # it is now blocked waiting for an answer
        thread = next(t for t in threading.enumerate() if t.name == f"informer-{informer.name}")
        started = time.monotonic()
        informer.stop()
        elapsed = time.monotonic() - started
        fault_proxy.pass_through()
    assert not thread.is_alive(), "the reflector thread outlived stop()"
    assert elapsed < 5, f"stop() took {elapsed:.1f} s"  # the semantics: aborted, not waited out
    assert not informer.statistics().reflector.running


def test_a_bookmark_from_the_future_is_surfaced_in_statistics_and_health(
    control_plane: ControlPlane, namespace: str, tmp_path: Any
):
    """The remaining defect: a BOOKMARK whose resourceVersion is from the future leaves the informer
    waiting for that version (the apiserver answers such a watch with 200 and nothing else, so the
    watch looks alive). The progress check must see the informer ahead of the server, in
    statistics and in the liveness check."""
    import time

    import orjson

    from controllers.checks import watches_healthy
    from controllers.probes import HealthCheckError
    from informers.informer import InformerOptions, SharedInformer

    from .injecting_proxy import InjectingProxy
    from .support import api_client, configmap, wait_for

    configmaps = Resource("", "v1", "configmaps", "ConfigMap", namespaced=True)
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    elsewhere = "/api/v1/namespaces/default/configmaps"
    future = 10**9

    def bookmark_from_the_future(line: bytes) -> bytes:
        event = orjson.loads(line)
        if event.get("type") != "BOOKMARK":
            return line
        meta = event["object"]["metadata"]
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + future)
        return orjson.dumps(event)

    def healthy(check: Any) -> bool:
        try:
            check()
        except HealthCheckError:
            return False
        return True

    written: list[str] = []
    options = InformerOptions(watch_timeout_range=(5, 6), progress_check_interval=0.5, backoff_cap=1.0)
    with InjectingProxy(control_plane) as proxy, api_client(proxy.kubeconfig(tmp_path)) as client:
        informer = SharedInformer(client, configmaps, namespace=namespace, options=options)
        # grace 0: the stall lasts only until the watch from the future version fails and the
        # informer relists (a few seconds, less under load), so fail as soon as it is seen.
        check = watches_healthy([informer], grace=0.0)
        informer.start()
        try:
            assert informer.wait_synced_blocking(30)
            control_plane.request_json("POST", path, configmap("before"))
            wait_for(lambda: informer.store.get(f"{namespace}/before") is not None, 20, "the first write")
            wait_for(lambda: informer.statistics().progress.checks >= 3, 20, "progress checks")
            assert informer.statistics().progress.stalled_since is None  # keeping up: no verdict
            assert healthy(check)
            proxy.rewrite = bookmark_from_the_future
            for n in range(30):  # bookmarks come once the type's version moved past the watch's
                written.append(f"elsewhere-{namespace}-{n}")
                control_plane.request_json("POST", elsewhere, configmap(written[-1]))
                deadline = time.monotonic() + 1.5
                while proxy.rewritten == 0 and time.monotonic() < deadline:
                    time.sleep(0.1)
                if proxy.rewritten:
                    break
            assert proxy.rewritten, "no bookmark arrived"
            proxy.rewrite = None  # one lie is enough: the server never sends that version
            seen: list[tuple[Any, int, str]] = []  # (progress, resume point, health failure) while stalled

            def stalled_and_unhealthy() -> bool:
                stats = informer.statistics()
                if stats.progress.stalled_since is None:
                    return False
                try:
                    check()
                except HealthCheckError as exc:
                    seen.append((stats.progress, int(stats.watcher.last_resource_version or 0), str(exc)))
                    return True
                return False

            wait_for(stalled_and_unhealthy, 20, "the stall to be seen and the liveness check to fail")
            progress, resume, failure = seen[-1]
            assert "ahead of the server" in (progress.stall_reason or ""), progress
            assert resume > int(progress.server_resource_version or 0), progress
            assert re.search("no progress .* ahead of the server", failure), failure
        finally:
            informer.stop()
            for name in written:
                control_plane.request("DELETE", f"{elsewhere}/{name}")


def test_a_watch_that_drops_events_while_bookmarks_come_through_is_surfaced(
    control_plane: ControlPlane, namespace: str, tmp_path: Any
):
    """The other face of a silent wait: the connection lives and bookmarks arrive (so no idle
    deadline fires and the resume point moves on), but changes never do. The progress check sees
    the server holding a version the cache lacks, twice in a row."""
    import orjson

    from controllers.checks import watches_healthy
    from controllers.probes import HealthCheckError
    from informers.informer import InformerOptions, SharedInformer

    from .injecting_proxy import InjectingProxy
    from .support import api_client, configmap, wait_for

    configmaps = Resource("", "v1", "configmaps", "ConfigMap", namespaced=True)
    path = f"/api/v1/namespaces/{namespace}/configmaps"

    def only_bookmarks(line: bytes) -> bytes:
        return line if orjson.loads(line).get("type") == "BOOKMARK" else b""  # an empty line is skipped

    def failing(check: Any) -> str | None:
        try:
            check()
        except HealthCheckError as exc:
            return str(exc)
        return None

    options = InformerOptions(watch_timeout_range=(5, 6), progress_check_interval=0.5, backoff_cap=1.0)
    with InjectingProxy(control_plane) as proxy, api_client(proxy.kubeconfig(tmp_path)) as client:
        informer = SharedInformer(client, configmaps, namespace=namespace, options=options)
        # grace 0: the stall lasts only until the watch from the future version fails and the
        # informer relists (a few seconds, less under load), so fail as soon as it is seen.
        check = watches_healthy([informer], grace=0.0)
        informer.start()
        try:
            assert informer.wait_synced_blocking(30)
            wait_for(lambda: informer.statistics().progress.checks >= 2, 20, "progress checks")
            assert failing(check) is None
            proxy.rewrite = only_bookmarks
            control_plane.request_json("POST", path, configmap("dropped"))
            wait_for(lambda: informer.statistics().progress.stalled_since is not None, 20, "the stall to be seen")
            assert informer.store.get(f"{namespace}/dropped") is None  # the watch really lost it
            reason = informer.statistics().progress.stall_reason or ""
            assert f"{namespace}/dropped is at resourceVersion" in reason and "the cache has nothing" in reason
            wait_for(lambda: failing(check) is not None, 20, "the liveness check to fail")
            assert "no progress" in (failing(check) or "")
        finally:
            informer.stop()
