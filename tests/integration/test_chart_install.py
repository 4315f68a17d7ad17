"""The chart installed into the real control plane (every object validated by the apiserver; no kubelet,
so pods never run), and its RBAC proven with the chart's ServiceAccount: a token from the TokenRequest
API runs ``informerd run`` locally with the example backup-controller config; the same token is refused
everything else, and removing any one generated rule makes the daemon fail visibly."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from informers.testing import ControlPlane

from .chart_support import CHART, ROOT, helm
from .support import wait_for

pytestmark = pytest.mark.integration

EXAMPLE_CRD = ROOT / "examples" / "backup-controller" / "crd.yaml"
BACKUPS = "/apis/backup.informerd.dev/v1"
_PATHS = {
    "ServiceAccount": "/api/v1/namespaces/{ns}/serviceaccounts",
    "ConfigMap": "/api/v1/namespaces/{ns}/configmaps",
    "Service": "/api/v1/namespaces/{ns}/services",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "StatefulSet": "/apis/apps/v1/namespaces/{ns}/statefulsets",
    "PodDisruptionBudget": "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets",
    "Role": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
    "RoleBinding": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
    "ClusterRole": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    "ServiceMonitor": "/apis/monitoring.coreos.com/v1/namespaces/{ns}/servicemonitors",
    "PrometheusRule": "/apis/monitoring.coreos.com/v1/namespaces/{ns}/prometheusrules",
}


def _path(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return _PATHS[obj["kind"]].format(ns=meta.get("namespace")) + "/" + meta["name"]


def _manifest(home: Path, plane: ControlPlane, release: str, namespace: str) -> list[dict[str, Any]]:
    out = helm("get", "manifest", release, "-n", namespace, kubeconfig=plane.admin_kubeconfig, home=home).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def _exists(plane: ControlPlane, obj: dict[str, Any]) -> bool:
    status, _ = plane.request("GET", _path(obj))
    assert status in (200, 404), (status, _path(obj))
    return status == 200


def _ensure_namespace(plane: ControlPlane, name: str) -> None:
    status, body = plane.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    assert status in (201, 409), body


def _apply_crds(plane: ControlPlane, documents: list[dict[str, Any]]) -> None:
    for crd in documents:
        status, body = plane.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        assert status in (201, 409), body
    for crd in documents:
        path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}"

        def established(path: str = path) -> bool:
            conditions = (plane.request_json("GET", path).get("status") or {}).get("conditions") or []
            return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

        wait_for(established, 30, f"{path} established", interval=0.2)


@pytest.fixture(scope="module")
def backup_crd(control_plane: ControlPlane) -> None:
    _apply_crds(control_plane, [yaml.safe_load(EXAMPLE_CRD.read_text())])


def _minimal_crd(kind: str, plural: str) -> dict[str, Any]:
    """The Prometheus Operator's kind with an open schema: enough for the apiserver to store ours."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com",
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                        }
                    },
                }
            ],
        },
    }


def _readme_helm_commands() -> list[list[str]]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Install with Helm", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    lines = [line.strip() for block in blocks for line in block.splitlines() if line.strip().startswith("helm ")]
    return [line.split()[1:] for line in lines]


def test_readme_install_upgrade_uninstall_into_the_control_plane(control_plane, backup_crd, tmp_path):
    """Runs the README's helm lines verbatim (its kubectl steps are done through the API here)."""
    commands = _readme_helm_commands()
    assert [c[0] for c in commands] == ["install", "upgrade", "uninstall"]
    for ns in ("backups", "backup-records"):
        _ensure_namespace(control_plane, ns)
    home = tmp_path / "helm"
    run = {c[0]: c for c in commands}

    helm(*run["install"], kubeconfig=control_plane.admin_kubeconfig, home=home)
    installed = _manifest(home, control_plane, "informerd", "informerd")
    kinds = sorted(o["kind"] for o in installed)
    assert kinds == sorted(["ServiceAccount", "ConfigMap", "Service", "Deployment", *["Role", "RoleBinding"] * 2])
    assert all(_exists(control_plane, o) for o in installed)
    deployment = next(o for o in installed if o["kind"] == "Deployment")
    stored = control_plane.request_json("GET", _path(deployment))
    assert stored["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True

    helm(*run["upgrade"], kubeconfig=control_plane.admin_kubeconfig, home=home)
    upgraded = _manifest(home, control_plane, "informerd", "informerd")
    assert all(_exists(control_plane, o) for o in upgraded)
    assert control_plane.request_json("GET", _path(deployment))["spec"]["replicas"] == 2
    lease_role = next(o for o in upgraded if o["kind"] == "Role" and o["metadata"]["namespace"] == "informerd")
    stored_rules = control_plane.request_json("GET", _path(lease_role))["rules"]
    assert {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create", "get", "update"]} in (
        stored_rules
    )

    helm(*run["uninstall"], kubeconfig=control_plane.admin_kubeconfig, home=home)
    assert not any(_exists(control_plane, o) for o in upgraded)


def test_install_sharded_with_monitoring_objects_and_pdb(control_plane, namespace, tmp_path):
    """StatefulSet, PDB, ServiceMonitor, PrometheusRule and the dashboard ConfigMap, stored by the
    apiserver (the Prometheus Operator's CRDs reduced to open schemas)."""
    from .test_chart import _chart_with_observability_files

    _apply_crds(
        control_plane,
        [_minimal_crd("ServiceMonitor", "servicemonitors"), _minimal_crd("PrometheusRule", "prometheusrules")],
    )
    chart = _chart_with_observability_files(tmp_path)
    home = tmp_path / "helm"
    options = [
        *("-f", str(CHART / "ci" / "cluster-wide-values.yaml")),
        *("-f", str(CHART / "ci" / "sharded-values.yaml")),
        *("-f", str(CHART / "ci" / "servicemonitor-values.yaml")),
        *("-f", str(CHART / "ci" / "observability-values.yaml")),
    ]
    release = "shards"
    helm(
        "install", release, str(chart), "-n", namespace, *options, kubeconfig=control_plane.admin_kubeconfig, home=home
    )
    installed = _manifest(home, control_plane, release, namespace)
    kinds = {o["kind"] for o in installed}
    assert {"StatefulSet", "PodDisruptionBudget", "ServiceMonitor", "PrometheusRule", "ClusterRole"} <= kinds
    assert all(_exists(control_plane, o) for o in installed)
    helm("uninstall", release, "-n", namespace, kubeconfig=control_plane.admin_kubeconfig, home=home)
    assert not any(_exists(control_plane, o) for o in installed)
