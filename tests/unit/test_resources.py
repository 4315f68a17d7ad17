"""Resource paths, and Discovery against canned discovery documents served over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from informers.client import ApiClient
from informers.config import ClientConfig
from informers.errors import ResourceNotFoundError
from informers.resources import Discovery, Resource

from ._local_http import Handler, LocalServer

POD = Resource("", "v1", "pods", "Pod", True)
NODE = Resource("", "v1", "nodes", "Node", False)
DEPLOYMENT = Resource("apps", "v1", "deployments", "Deployment", True)
CLUSTER_ROLE = Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False)


@pytest.mark.parametrize(
    ("resource", "namespace", "name", "subresource", "expected"),
    [
        (POD, None, None, None, "/api/v1/pods"),
        (POD, "default", None, None, "/api/v1/namespaces/default/pods"),
        (POD, "default", "web-0", "status", "/api/v1/namespaces/default/pods/web-0/status"),
        (NODE, None, None, None, "/api/v1/nodes"),
        (NODE, None, "node-1", None, "/api/v1/nodes/node-1"),
        (DEPLOYMENT, None, None, None, "/apis/apps/v1/deployments"),
        (DEPLOYMENT, "prod", "api", "scale", "/apis/apps/v1/namespaces/prod/deployments/api/scale"),
        (CLUSTER_ROLE, None, None, None, "/apis/rbac.authorization.k8s.io/v1/clusterroles"),
        (
            CLUSTER_ROLE,
            None,
            "system:basic-user",
            None,
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:basic-user",
        ),
    ],
)
def test_path(
    resource: Resource, namespace: str | None, name: str | None, subresource: str | None, expected: str
) -> None:
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


Catalog = dict[str, list[tuple[str, list[tuple[str, str, bool]]]]]
"""group -> [(version, [(plural, kind, namespaced)])], versions in preference order, groups in priority."""

CATALOG: Catalog = {
    "": [
        (
            "v1",
            [
                ("pods", "Pod", True),
                ("pods/status", "Pod", True),
                ("pods/log", "Pod", True),
                ("nodes", "Node", False),
                ("events", "Event", True),
                ("bindings", "Binding", True),
            ],
        )
    ],
    "apps": [("v1", [("deployments", "Deployment", True), ("deployments/scale", "Scale", True)])],
    "events.k8s.io": [("v1", [("events", "Event", True)])],
    "example.com": [("v1", [("widgets", "Widget", False)]), ("v1beta1", [("widgets", "Widget", False)])],
}
VERBS = ["get", "list", "watch"]


def legacy_resource_list(group_version: str, resources: list[tuple[str, str, bool]]) -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "groupVersion": group_version,
        "resources": [
            {"name": name, "kind": kind, "namespaced": namespaced, "verbs": VERBS}
            for name, kind, namespaced in resources
        ],
    }


def aggregated(catalog: Catalog, core: bool) -> dict[str, Any]:
    items = []
    for group, versions in catalog.items():
        if (group == "") != core:
            continue
        items.append(
            {
                "metadata": {"name": group},
                "versions": [
                    {
                        "version": version,
                        "freshness": "Current",
                        "resources": [
                            {
                                "resource": name,
                                "responseKind": {"group": group, "version": version, "kind": kind},
                                "scope": "Namespaced" if namespaced else "Cluster",
                                "verbs": VERBS,
                            }
                            for name, kind, namespaced in resources
                            if "/" not in name
                        ],
                    }
                    for version, resources in versions
                ],
            }
        )
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "items": items}


class DiscoveryServer:
    """Serves a catalog as aggregated discovery (when asked and enabled) and as legacy documents."""

    def __init__(self, server: LocalServer, *, aggregated: bool) -> None:
        self.server = server
        self.aggregated = aggregated
        self.publish(CATALOG)

    def publish(self, catalog: Catalog) -> None:
        def index(core: bool, legacy: dict[str, Any]) -> Any:
            def answer(h: Handler) -> None:
                wants = "as=APIGroupDiscoveryList" in (h.headers.get("Accept") or "")
                h.send_json(200, aggregated(catalog, core) if self.aggregated and wants else legacy)

            return answer

        core_versions = [v for v, _ in catalog[""]]
        self.server.route("/api")(index(True, {"kind": "APIVersions", "versions": core_versions}))
        groups = [
            {
                "name": g,
                "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v, _ in versions],
                "preferredVersion": {"groupVersion": f"{g}/{versions[0][0]}", "version": versions[0][0]},
            }
            for g, versions in catalog.items()
            if g
        ]
        self.server.route("/apis")(index(False, {"kind": "APIGroupList", "groups": groups}))
        for group, versions in catalog.items():
            for version, resources in versions:
                gv = f"{group}/{version}" if group else version
                path = f"/apis/{gv}" if group else f"/api/{version}"
                self.server.json(path, legacy_resource_list(gv, resources))

    def documents(self) -> int:
        return len(self.server.requests)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    srv = LocalServer()
    yield srv
    srv.close()


@pytest.fixture(params=[True, False], ids=["aggregated", "legacy"])
def served(request: pytest.FixtureRequest, server: LocalServer) -> DiscoveryServer:
    return DiscoveryServer(server, aggregated=request.param)


@pytest.fixture
def discovery(server: LocalServer, served: DiscoveryServer) -> Iterator[Discovery]:
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


def test_mode_is_detected(discovery: Discovery, served: DiscoveryServer) -> None:
    assert discovery.statistics().aggregated is None
    discovery.resolve("", "v1", "pods")
    assert discovery.statistics().aggregated is served.aggregated


def test_aggregated_discovery_needs_two_documents_for_everything(server: LocalServer) -> None:
    DiscoveryServer(server, aggregated=True)
    with ApiClient(ClientConfig(host=server.url, qps=-1.0)) as client:
        discovery = Discovery(client)
        discovery.resolve("", "v1", "pods")
        discovery.resolve("apps", "v1", "deployments")
        discovery.resolve_kind("Widget")
        discovery.resolve_kind("Event", "events.k8s.io/v1")
    assert [r.path for r in server.requests] == ["/api", "/apis"]


def test_legacy_discovery_fetches_each_group_version_once(server: LocalServer) -> None:
    DiscoveryServer(server, aggregated=False)
    with ApiClient(ClientConfig(host=server.url, qps=-1.0)) as client:
        discovery = Discovery(client)
        discovery.resolve("", "v1", "pods")
        discovery.resolve("", "v1", "nodes")
        discovery.resolve("apps", "v1", "deployments")
    assert [r.path for r in server.requests] == ["/api", "/apis", "/api/v1", "/apis/apps/v1"]
    stats = discovery.statistics()
    assert (stats.documents, stats.hits, stats.misses, stats.refreshes) == (4, 3, 0, 0)


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


def test_crd_created_after_start_resolves_by_plural(served: DiscoveryServer, discovery: Discovery) -> None:
    assert discovery.resolve("example.com", "v1", "widgets").kind == "Widget"
    catalog = dict(CATALOG)
    catalog["example.com"] = [("v1", [("widgets", "Widget", False), ("gadgets", "Gadget", True)])]
    served.publish(catalog)
    gadget = discovery.resolve("example.com", "v1", "gadgets")
    assert gadget == Resource("example.com", "v1", "gadgets", "Gadget", True)
    assert discovery.statistics().refreshes == 1


def test_crd_in_a_new_group_resolves_by_kind(served: DiscoveryServer, discovery: Discovery) -> None:
    with pytest.raises(ResourceNotFoundError):
        discovery.resolve_kind("Tenant")
    served.publish({**CATALOG, "tenancy.example.org": [("v1alpha1", [("tenants", "Tenant", False)])]})
    tenant = discovery.resolve_kind("Tenant")
    assert tenant.path() == "/apis/tenancy.example.org/v1alpha1/tenants"
    assert discovery.resolve("tenancy.example.org", "v1alpha1", "tenants") == tenant


def test_a_miss_fetches_each_document_at_most_once_more(
    server: LocalServer, served: DiscoveryServer, discovery: Discovery
) -> None:
    with pytest.raises(ResourceNotFoundError):
        discovery.resolve_kind("Gadget")
    # Nothing was cached before: the first pass fetched everything, the refresh fetched nothing twice.
    first = [r.path for r in server.requests]
    assert len(first) == len(set(first))
    with pytest.raises(ResourceNotFoundError):
        discovery.resolve_kind("Gadget")
    # Now everything was cached: one refresh fetches each document once more.
    assert sorted(r.path for r in server.requests) == sorted(first * 2)


def test_invalidate_forgets_the_cache(server: LocalServer, discovery: Discovery) -> None:
    discovery.resolve("", "v1", "pods")
    before = len(server.requests)
    discovery.invalidate()
    discovery.resolve("", "v1", "pods")
    assert len(server.requests) == 2 * before
