"""Shared helpers of the daemon's end-to-end tests: the example config adapted to a test's
namespaces, RBAC built from the config's grants, reading Jobs/records/Backups from the server, and
parsing a ``/metrics`` scrape."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from backup_controller import BACKUPS, JOBS
from backup_controller.kit import create_namespace, install_crd
from backup_controller.names import LABEL_GENERATION, LABEL_UID
from prometheus_client.parser import text_string_to_metric_families

from informers.testing import ControlPlane

EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "examples" / "backup-controller" / "config.yaml"
RBAC = "/apis/rbac.authorization.k8s.io/v1"


def example_config(namespace: str, records: str, **overrides: Any) -> dict[str, Any]:
    """``examples/backup-controller/config.yaml`` watching ``namespace``, records in ``records``."""
    config: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    config = copy.deepcopy(config)
    config["namespace"] = namespace
    config["reconcilers"][0]["options"]["recordNamespace"] = records
    config.update(overrides)
    return config


def prepare(plane: ControlPlane, namespace: str) -> str:
    """The CRD installed and a record namespace for ``namespace``; returns the record namespace."""
    install_crd(plane)
    records = f"{namespace}-rec"[:63]
    create_namespace(plane, records)
    return records


def grant(plane: ControlPlane, user: str, *, read_backups: bool) -> None:
    """A ClusterRole for ``user`` with what the example config grants plus reading what it watches
    (``read_backups=False`` leaves out list/watch on Backups), bound to the user; re-granting
    replaces the rules."""
    backup_verbs = ["get", "patch", "update"] + (["list", "watch"] if read_backups else [])
    rules = [
        {"apiGroups": [BACKUPS.group], "resources": ["backups"], "verbs": backup_verbs},
        {"apiGroups": [BACKUPS.group], "resources": ["backups/status"], "verbs": ["get", "patch"]},
        {"apiGroups": [JOBS.group], "resources": ["jobs"], "verbs": ["get", "list", "watch", "create"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "get", "delete"]},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]},
    ]
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": user},
        "rules": rules,
    }
    status, _ = plane.request("GET", f"{RBAC}/clusterroles/{user}")
    if status == 200:
        plane.request_json("PUT", f"{RBAC}/clusterroles/{user}", role)
        return
    plane.request_json("POST", f"{RBAC}/clusterroles", role)
    plane.request_json(
        "POST",
        f"{RBAC}/clusterrolebindings",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": user},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": user},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    )


def jobs(plane: ControlPlane, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = plane.request_json("GET", JOBS.path(namespace))["items"]
    return items


def job_runs(plane: ControlPlane, namespace: str) -> list[tuple[str, str]]:
    """(Backup UID, generation) of every Job, one entry per Job, sorted."""
    return sorted(
        (j["metadata"]["labels"][LABEL_UID], j["metadata"]["labels"][LABEL_GENERATION]) for j in jobs(plane, namespace)
    )


def records(plane: ControlPlane, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = plane.request_json("GET", f"/api/v1/namespaces/{namespace}/configmaps")["items"]
    return [cm for cm in items if LABEL_UID in (cm["metadata"].get("labels") or {})]


def backups(plane: ControlPlane, namespace: str) -> dict[str, dict[str, Any]]:
    items = plane.request_json("GET", BACKUPS.path(namespace))["items"]
    return {b["metadata"]["name"]: b for b in items}


def get_backup(plane: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    got: dict[str, Any] = plane.request_json("GET", BACKUPS.path(namespace, name))
    return got


def create_backup(plane: ControlPlane, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    made: dict[str, Any] = plane.request_json("POST", BACKUPS.path(namespace), body)
    return made


def patch_backup(plane: ControlPlane, namespace: str, name: str, patch: dict[str, Any]) -> None:
    status, body = plane.request(
        "PATCH", BACKUPS.path(namespace, name), patch, content_type="application/merge-patch+json"
    )
    assert status == 200, body


def ready(backup: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in backup.get("status", {}).get("conditions", []))


def is_ready_at(plane: ControlPlane, namespace: str, name: str, generation: int) -> bool:
    b = get_backup(plane, namespace, name)
    return ready(b) and b.get("status", {}).get("observedGeneration") == generation


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def total(scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], metric: str, /, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in scraped.items() if n == metric and want <= ls)


def present(scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], metric: str) -> bool:
    return any(n == metric for (n, _) in scraped)
