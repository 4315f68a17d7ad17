"""A 429 storm from a real apiserver: priority-and-fairness configured to reject a user's second
concurrent request. The client honours Retry-After and every request ends in success; an informer
for that user still syncs and ends equal to the server."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from informers.informer import InformerOptions, SharedInformer
from informers.resources import Resource
from informers.testing import ControlPlane

from .churn import create_configmaps
from .support import api_client, wait_cache_equals_server

pytestmark = pytest.mark.integration

USER = "storm"
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", namespaced=True)


@pytest.fixture(scope="module")
def throttled_plane() -> Iterator[ControlPlane]:
    # Two seats in all; the storm user's priority level gets one and rejects (429) instead of queueing.
    with ControlPlane(apiserver_args=["--max-requests-inflight=1", "--max-mutating-requests-inflight=1"]) as plane:
        flowcontrol = "/apis/flowcontrol.apiserver.k8s.io/v1"
        plane.request_json(
            "POST",
            f"{flowcontrol}/prioritylevelconfigurations",
            {
                "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
                "kind": "PriorityLevelConfiguration",
                "metadata": {"name": "storm"},
                "spec": {
                    "type": "Limited",
                    "limited": {
                        "nominalConcurrencyShares": 1,
                        "lendablePercent": 0,
                        "borrowingLimitPercent": 0,
                        "limitResponse": {"type": "Reject"},
                    },
                },
            },
        )
        plane.request_json(
            "POST",
            f"{flowcontrol}/flowschemas",
            {
                "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
                "kind": "FlowSchema",
                "metadata": {"name": "storm"},
                "spec": {
                    "priorityLevelConfiguration": {"name": "storm"},
                    "matchingPrecedence": 100,
                    "rules": [
                        {
                            "subjects": [{"kind": "User", "user": {"name": USER}}],
                            "resourceRules": [
                                {
                                    "verbs": ["*"],
                                    "apiGroups": ["*"],
                                    "resources": ["*"],
                                    "namespaces": ["*"],
                                    "clusterScope": True,
                                }
                            ],
                            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                        }
                    ],
                },
            },
        )
        # (aggregated roles such as "view" stay empty: no controller-manager runs in the kit)
        plane.request_json(
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "storm"},
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}],
            },
        )
        plane.request_json(
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "storm"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "storm"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER}],
            },
        )
        plane.request_json("POST", "/api/v1/namespaces", {"metadata": {"name": "storm"}})
        yield plane


def test_a_429_storm_is_ridden_out_with_retry_after(throttled_plane: ControlPlane):
    create_configmaps(throttled_plane, "storm", 200, prefix="s")
    with api_client(throttled_plane.user_kubeconfig(USER), qps=-1) as client:

        def list_configmaps(_: int) -> int:
            return len(client.get_json("/api/v1/namespaces/storm/configmaps")["items"])

        with ThreadPoolExecutor(8) as pool:
            counts = list(pool.map(list_configmaps, range(64)))
        assert counts == [200] * 64  # every request succeeded in the end
        stats = client.statistics()
        # answers are counted by class; a 4xx other than a retried 429 would have raised above
        rejected = stats.requests.get(("GET", "4xx"), 0)
        assert rejected > 0, stats.requests  # the storm was real
        assert stats.retries == rejected


def test_an_informer_syncs_through_a_429_storm(throttled_plane: ControlPlane):
    with (
        api_client(throttled_plane.user_kubeconfig(USER), qps=-1) as client,
        api_client(throttled_plane.user_kubeconfig(USER), qps=-1) as noisy,
    ):
        informer = SharedInformer(
            client, CONFIGMAPS, namespace="storm", options=InformerOptions(page_size=50, backoff_initial=0.1)
        )
        stop = False

        def storm() -> None:
            while not stop:
                noisy.get_json("/api/v1/namespaces/storm/configmaps", {"limit": 1})

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(storm) for _ in range(4)]
            informer.start()
            try:
                assert informer.wait_synced_blocking(60)
            finally:
                stop = True
            for f in futures:
                f.result()
        try:
            wait_cache_equals_server(informer, throttled_plane, "/api/v1/namespaces/storm/configmaps")
            assert noisy.statistics().retries > 0 or client.statistics().retries > 0
        finally:
            informer.stop()
