"""The control-plane kit against real etcd + kube-apiserver: CRUD and watch through its kubeconfig,
RBAC for non-admin users and ServiceAccounts, apiserver restart, and 410 after etcd compaction."""

from __future__ import annotations

import threading
import time
import uuid

import orjson
import pytest
import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch
from kubernetes.client.rest import ApiException

from informers.testing import ControlPlane, FaultProxy

pytestmark = pytest.mark.integration


def _core(kubeconfig) -> k8s.CoreV1Api:
    configuration = k8s.Configuration()
    k8s_config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return k8s.CoreV1Api(k8s.ApiClient(configuration))


def _configmap(name: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def test_create_list_and_watch_a_configmap_through_the_admin_kubeconfig(control_plane: ControlPlane, namespace: str):
    core = _core(control_plane.admin_kubeconfig)
    created = core.create_namespaced_config_map(namespace, _configmap("first", a="1"))
    names = [cm.metadata.name for cm in core.list_namespaced_config_map(namespace).items]
    assert names == ["first"]

    seen: list[tuple[str, str]] = []
    watcher = k8s_watch.Watch()

    def writer() -> None:  # writes while the watch below is open
        time.sleep(0.5)
        core.create_namespaced_config_map(namespace, _configmap("second", b="2"))
        core.delete_namespaced_config_map("first", namespace)

    thread = threading.Thread(target=writer)
    thread.start()
    for event in watcher.stream(
        core.list_namespaced_config_map,
        namespace,
        resource_version=created.metadata.resource_version,
        timeout_seconds=20,
    ):
        seen.append((event["type"], event["object"].metadata.name))
        if ("DELETED", "first") in seen:
            watcher.stop()
    thread.join()
    assert ("ADDED", "second") in seen and ("DELETED", "first") in seen


def test_non_admin_user_is_forbidden_secrets_but_allowed_what_rbac_grants(control_plane: ControlPlane, namespace: str):
    user = f"dev-{uuid.uuid4().hex[:6]}"
    core = _core(control_plane.user_kubeconfig(user, ["developers"]))
    with pytest.raises(ApiException) as denied:
        core.list_namespaced_secret(namespace)
    assert denied.value.status == 403
    assert user in orjson.loads(denied.value.body)["message"]  # authenticated as that user, then denied

    control_plane.request_json(
        "POST",
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "cm-reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}],
        },
    )
    control_plane.request_json(
        "POST",
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "cm-reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-reader"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "developers"}],
        },
    )
    assert core.list_namespaced_config_map(namespace).items == []
    with pytest.raises(ApiException) as still_denied:
        core.list_namespaced_secret(namespace)
    assert still_denied.value.status == 403


def test_service_account_token_authenticates_as_the_service_account(control_plane: ControlPlane, namespace: str):
    core = _core(control_plane.service_account_kubeconfig(namespace, "robot"))
    with pytest.raises(ApiException) as denied:
        core.list_namespaced_secret(namespace)
    assert denied.value.status == 403
    assert f"system:serviceaccount:{namespace}:robot" in orjson.loads(denied.value.body)["message"]


def test_apiserver_restart_keeps_the_data(control_plane: ControlPlane, namespace: str):
    core = _core(control_plane.admin_kubeconfig)
    core.create_namespaced_config_map(namespace, _configmap("survivor", kept="yes"))
    old_pid = control_plane.apiserver.pid
    control_plane.restart_apiserver()
    assert control_plane.apiserver.pid != old_pid
    core = _core(control_plane.admin_kubeconfig)
    assert core.read_namespaced_config_map("survivor", namespace).data == {"kept": "yes"}


def _watch_events(control_plane: ControlPlane, path: str, resource_version: str) -> list[dict]:
    """Raw watch; returns the decoded events until the server ends the stream."""
    status, body = control_plane.request(
        "GET", f"{path}?watch=1&resourceVersion={resource_version}&timeoutSeconds=3", timeout=20
    )
    assert status == 200, body
    return [orjson.loads(line) for line in body.splitlines() if line.strip()]


def test_watch_from_before_an_etcd_compaction_ends_in_410_gone(control_plane: ControlPlane, namespace: str):
    # podtemplates are served without a watch cache in the kit (--watch-cache-sizes), so watches reach etcd.
    path = f"/api/v1/namespaces/{namespace}/podtemplates"
    template = {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": {"name": "tpl", "labels": {"v": "0"}},
        "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}},
    }
    old_rv = control_plane.request_json("POST", path, template)["metadata"]["resourceVersion"]
    for i in range(1, 4):
        obj = control_plane.request_json("GET", f"{path}/tpl")
        obj["metadata"]["labels"]["v"] = str(i)
        control_plane.request_json("PUT", f"{path}/tpl", obj)

    before = _watch_events(control_plane, path, old_rv)  # control: the old RV still works before compaction
    assert [e["type"] for e in before] == ["MODIFIED"] * 3

    control_plane.compact_etcd()
    after = _watch_events(control_plane, path, old_rv)
    assert after and after[-1]["type"] == "ERROR"
    assert after[-1]["object"]["code"] == 410, after[-1]


def test_fault_proxy_cut_and_stall_act_on_real_apiserver_connections(
    control_plane: ControlPlane, fault_proxy: FaultProxy
):
    pool = urllib3.PoolManager(
        ca_certs=str(control_plane.ca_file),
        cert_file=str(control_plane.workdir / "certs" / "admin.crt"),
        key_file=str(control_plane.workdir / "certs" / "admin.key"),
    )
    url = f"{fault_proxy.url}/api/v1/namespaces/default"
    assert pool.request("GET", url, timeout=5, retries=False).status == 200

    # A watch stream through the proxy ends at once when the proxy cuts it.
    stream = pool.request(
        "GET",
        f"{fault_proxy.url}/api/v1/configmaps?watch=1&timeoutSeconds=60",
        preload_content=False,
        timeout=urllib3.Timeout(connect=5, read=30),
        retries=False,
    )
    assert stream.status == 200
    assert fault_proxy.cut() >= 1
    with pytest.raises((urllib3.exceptions.ProtocolError, urllib3.exceptions.SSLError, OSError)):
        for _ in stream.stream(1024):
            pass
    stream.release_conn()

    # A stalled proxy accepts but never answers: the request times out instead of completing.
    fault_proxy.stall()
    with pytest.raises(urllib3.exceptions.HTTPError):
        pool.request("GET", url, timeout=urllib3.Timeout(connect=2, read=1), retries=False)
    assert fault_proxy.statistics().active >= 1
    fault_proxy.pass_through()
    pool.clear()
    assert pool.request("GET", url, timeout=5, retries=False).status == 200
