"""Running the kit's helm against the chart: render, lint, install; parse what it renders."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from informers.testing.assets import find_helm

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "informerd"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))


def helm(
    *args: str, kubeconfig: Path | str | None = None, home: Path, check: bool = True, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """One helm command with its own config/cache/data directories under ``home``."""
    env = {
        **os.environ,
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    env.pop("KUBECONFIG", None)
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    proc = subprocess.run([str(find_helm()), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180)
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def render(
    home: Path, *options: str, chart: Path = CHART, release: str = "rel", namespace: str = "informerd"
) -> list[dict[str, Any]]:
    out = helm("template", release, str(chart), "--namespace", namespace, *options, home=home).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def find(objects: Iterable[dict[str, Any]], kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
    return [
        o for o in objects if o["kind"] == kind and (namespace is None or o["metadata"].get("namespace") == namespace)
    ]


def one(objects: Iterable[dict[str, Any]], kind: str, namespace: str | None = None) -> dict[str, Any]:
    found = find(objects, kind, namespace)
    assert len(found) == 1, f"expected one {kind} in {namespace}, got {[o['metadata']['name'] for o in found]}"
    return found[0]


def rules_of(role: dict[str, Any]) -> set[tuple[tuple[str, ...], str, tuple[str, ...]]]:
    """A role's rules as (apiGroups, resource, verbs), one per resource."""
    out = set()
    for rule in role["rules"]:
        assert len(rule["resources"]) == 1
        out.add((tuple(rule["apiGroups"]), rule["resources"][0], tuple(rule["verbs"])))
    return out


def container(workload: dict[str, Any]) -> dict[str, Any]:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    return only


def env_of(workload: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(workload)["env"]}


def set_args(pairs: Sequence[str]) -> list[str]:
    return [a for pair in pairs for a in ("--set", pair)]
