"""The README's controller example, as printed there, runs against a real apiserver: it owns a
ConfigMap per Widget, sets Ready, and drains and exits cleanly on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from controllers.conditions import get_condition
from informers.testing import ControlPlane

from .support import wait_for
from .widgets import children_of, get

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
GROUP = "example.com"


def readme_controller_example() -> str:
    text = README.read_text()
    section = text[text.index("## Controllers: the front door") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README's front-door section has a python example"
    return match.group(1)


def test_the_readme_controller_example_reconciles_and_stops_on_sigterm(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
):
    code = readme_controller_example()
    assert len(code.splitlines()) <= 25, "the example fits on one screen"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }
            ],
        },
    }
    status, _ = control_plane.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert status in (201, 409)
    path = f"/apis/{GROUP}/v1/namespaces/{namespace}/widgets"
    wait_for(lambda: control_plane.request("GET", path)[0] == 200, 30, "Widget CRD served")
    script = tmp_path / "example.py"
    script.write_text(code)
    env = {**os.environ, "KUBECONFIG": str(control_plane.admin_kubeconfig)}
    proc = subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        widget = control_plane.request_json(
            "POST",
            path,
            {"apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": {"name": "readme"}, "spec": {"size": 2}},
        )
        uid = widget["metadata"]["uid"]

        def reconciled() -> bool:
            current = get(control_plane, f"{path}/readme")
            ready = get_condition(current, "Ready") if current else None
            children = children_of(control_plane, namespace, uid)
            return (
                ready is not None
                and ready["status"] == "True"
                and len(children) == 1
                and children[0]["data"] == {"size": "2"}
            )

        wait_for(reconciled, 60, "the README example to reconcile the Widget")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err[-2000:]
        assert out == ""  # the library prints nothing of its own
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
