"""Resource paths, and Discovery against canned discovery documents served over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from informers.client import ApiClient
from informers.config import ClientConfig
from informers.errors import ResourceNotFoundError
from informers.resources import Discovery, Resource

from ._local_http import LocalServer

POD = Resource("", "v1", "pods", "Pod", True)
NODE = Resource("", "v1", "nodes", "Node", False)
DEPLOYMENT = Resource("apps", "v1", "deployments", "Deployment", True)
CLUSTER_ROLE = Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False)


@pytest.mark.parametrize(("resource", "namespace", "name", "subresource", "expected"), [
    (POD, None, None, None, "/api/v1/pods"),
    (POD, "default", None, None, "/api/v1/namespaces/default/pods"),
    (POD, "default", "web-0", "status", "/api/v1/namespaces/default/pods/web-0/status"),
    (NODE, None, None, None, "/api/v1/nodes"),
    (NODE, None, "node-1", None, "/api/v1/nodes/node-1"),
    (DEPLOYMENT, None, None, None, "/apis/apps/v1/deployments"),
    (DEPLOYMENT, "prod", "api", "scale", "/apis/apps/v1/namespaces/prod/deployments/api/scale"),
    (CLUSTER_ROLE, None, None, None, "/apis/rbac.authorization.k8s.io/v1/clusterroles"),
    (CLUSTER_ROLE, None, "system:basic-user", None,
     "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:basic-user"),
])
def test_path(resource: Resource, namespace: str | None, name: str | None, subresource: str | None,
              expected: str) -> None:
    assert resource.path(namespace, name, subresource) == expected


def test_path_rejects_wrong_scope_and_escapes_segments() -> None:
    with pytest.raises(ValueError, match="cluster-scoped"):
        NODE.path("default")
    with pytest.raises(ValueError, match="needs a namespace"):
        POD.path(name="web-0")
    with pytest.raises(ValueError, match="subresource"):
        NODE.path(subresource="status")
    with pytest.raises(ValueError, match="empty"):
        NODE.path(name="")
    assert NODE.path(name="a/b c") == "/api/v1/nodes/a%2Fb%20c"


def test_identity_helpers() -> None:
    assert POD.api_version == "v1" and DEPLOYMENT.api_version == "apps/v1"
    assert str(POD) == "pods.v1" and str(DEPLOYMENT) == "deployments.v1.apps"
    listed = Resource("apps", "v1", "deployments", "Deployment", True, verbs=("get", "list"))
    assert listed == DEPLOYMENT  # verbs do not change identity
    assert listed.supports("list") and not listed.supports("watch")
    assert DEPLOYMENT.supports("watch")  # hand-built: unknown verbs are not held against it


def resource_list(group_version: str, *resources: tuple[str, str, bool]) -> dict[str, Any]:
    return {"kind": "APIResourceList", "groupVersion": group_version, "resources": [
        {"name": name, "kind": kind, "namespaced": namespaced, "verbs": ["get", "list", "watch"]}
        for name, kind, namespaced in resources
    ]}


def group(name: str, *versions: str) -> dict[str, Any]:
    return {"name": name,
            "versions": [{"groupVersion": f"{name}/{v}", "version": v} for v in versions],
            "preferredVersion": {"groupVersion": f"{name}/{versions[0]}", "version": versions[0]}}


@pytest.fixture
def server() -> Iterator[LocalServer]:
    srv = LocalServer()
    srv.json("/api", {"kind": "APIVersions", "versions": ["v1"]})
    srv.json("/api/v1", resource_list(
        "v1", ("pods", "Pod", True), ("pods/status", "Pod", True), ("pods/log", "Pod", True),
        ("nodes", "Node", False), ("events", "Event", True), ("bindings", "Binding", True)))
    srv.json("/apis", {"kind": "APIGroupList", "groups": [
        group("apps", "v1"), group("events.k8s.io", "v1"), group("example.com", "v1", "v1beta1")]})
    srv.json("/apis/apps/v1", resource_list(
        "apps/v1", ("deployments", "Deployment", True), ("deployments/scale", "Scale", True)))
    srv.json("/apis/events.k8s.io/v1", resource_list("events.k8s.io/v1", ("events", "Event", True)))
    srv.json("/apis/example.com/v1", resource_list("example.com/v1", ("widgets", "Widget", False)))
    srv.json("/apis/example.com/v1beta1", resource_list("example.com/v1beta1", ("widgets", "Widget", False)))
    yield srv
    srv.close()


@pytest.fixture
def discovery(server: LocalServer) -> Iterator[Discovery]:
    client = ApiClient(ClientConfig(host=server.url, qps=-1.0))
    yield Discovery(client)
    client.close()


def test_resolve_core_grouped_and_custom(discovery: Discovery) -> None:
    pod = discovery.resolve("", "v1", "pods")
    assert pod == POD and "watch" in pod.verbs
    assert discovery.resolve("", "v1", "nodes") == NODE
    assert discovery.resolve("apps", "v1", "deployments") == DEPLOYMENT
    widget = discovery.resolve("example.com", "v1beta1", "widgets")
    assert (widget.group, widget.version, widget.kind, widget.namespaced) == ("example.com", "v1beta1", "Widget", False)


def test_resolve_is_cached(server: LocalServer, discovery: Discovery) -> None:
    discovery.resolve("", "v1", "pods")
    discovery.resolve("", "v1", "nodes")
    assert len(server.requests_to("/api/v1")) == 1
    stats = discovery.statistics()
    assert (stats.documents, stats.hits, stats.misses, stats.refreshes) == (1, 2, 0, 0)


def test_subresources_are_never_resolved(discovery: Discovery) -> None:
    with pytest.raises(ResourceNotFoundError):
        discovery.resolve("", "v1", "pods/status")
    with pytest.raises(ResourceNotFoundError, match="'Scale'"):
        discovery.resolve_kind("Scale", "apps/v1")  # only deployments/scale serves Scale


def test_resolve_kind_with_and_without_api_version(discovery: Discovery) -> None:
    assert discovery.resolve_kind("Deployment", "apps/v1") == DEPLOYMENT
    assert discovery.resolve_kind("Pod", "v1") == POD
    assert discovery.resolve_kind("Widget").version == "v1"  # the preferred version
    # Event is served by the core group and events.k8s.io: the core group comes first.
    assert discovery.resolve_kind("Event").group == ""
    assert discovery.resolve_kind("Event", "events.k8s.io/v1").group == "events.k8s.io"


def test_unknown_names_what_was_looked_up(discovery: Discovery) -> None:
    with pytest.raises(ResourceNotFoundError, match="no resource 'gadgets' in example.com/v1") as caught:
        discovery.resolve("example.com", "v1", "gadgets")
    assert "widgets" in str(caught.value)  # what the group-version does serve
    with pytest.raises(ResourceNotFoundError, match="'Gadget' in any API group"):
        discovery.resolve_kind("Gadget")
    with pytest.raises(ResourceNotFoundError, match="not served"):
        discovery.resolve("nope.io", "v1", "things")
    with pytest.raises(ResourceNotFoundError, match="'Thing' in nope.io/v1"):
        discovery.resolve_kind("Thing", "nope.io/v1")


def test_crd_created_after_start_resolves_by_plural(server: LocalServer, discovery: Discovery) -> None:
    assert discovery.resolve("example.com", "v1", "widgets").kind == "Widget"
    server.json("/apis/example.com/v1", resource_list(
        "example.com/v1", ("widgets", "Widget", False), ("gadgets", "Gadget", True)))
    gadget = discovery.resolve("example.com", "v1", "gadgets")
    assert gadget == Resource("example.com", "v1", "gadgets", "Gadget", True)
    assert len(server.requests_to("/apis/example.com/v1")) == 2
    assert discovery.statistics().refreshes == 1


def test_crd_in_a_new_group_resolves_by_kind(server: LocalServer, discovery: Discovery) -> None:
    with pytest.raises(ResourceNotFoundError):
        discovery.resolve_kind("Tenant")
    server.json("/apis", {"kind": "APIGroupList", "groups": [
        group("apps", "v1"), group("events.k8s.io", "v1"), group("example.com", "v1", "v1beta1"),
        group("tenancy.example.org", "v1alpha1")]})
    server.json("/apis/tenancy.example.org/v1alpha1", resource_list(
        "tenancy.example.org/v1alpha1", ("tenants", "Tenant", False)))
    tenant = discovery.resolve_kind("Tenant")
    assert tenant.path() == "/apis/tenancy.example.org/v1alpha1/tenants"


def test_a_miss_fetches_each_document_at_most_once_more(server: LocalServer, discovery: Discovery) -> None:
    with pytest.raises(ResourceNotFoundError):
        discovery.resolve_kind("Gadget")
    # Nothing was cached before: the first pass fetched everything, the refresh fetched nothing twice.
    assert len(server.requests_to("/apis")) == 1
    assert len(server.requests_to("/api/v1")) == 1
    with pytest.raises(ResourceNotFoundError):
        discovery.resolve_kind("Gadget")
    # Now everything was cached: one refresh fetches each document once more.
    assert len(server.requests_to("/apis")) == 2
    assert len(server.requests_to("/apis/apps/v1")) == 2


def test_invalidate_forgets_the_cache(server: LocalServer, discovery: Discovery) -> None:
    discovery.resolve("", "v1", "pods")
    discovery.invalidate()
    discovery.resolve("", "v1", "pods")
    assert len(server.requests_to("/api/v1")) == 2
