"""pytest fixtures for a real control plane, registered as a plugin (entry point ``pytest11``).

Fixtures: ``control_plane`` (one etcd + kube-apiserver for the whole session), ``namespace`` (a fresh
namespace per test), ``fault_proxy`` (a ``FaultProxy`` in front of the apiserver, per test).
Invariant: a missing binary is a test *error* naming the install command, never a skip, so a CI run
without a control plane cannot pass.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from .assets import MissingBinaryError, find_assets
from .proxy import FaultProxy

if TYPE_CHECKING:  # imported when a fixture needs it: the plugin loads without cryptography
    from .controlplane import ControlPlane

__all__ = ["SESSION_APISERVER_ARGS", "control_plane", "fault_proxy", "namespace"]

# PodTemplates are served without a watch cache, so watches on them reach etcd and an etcd
# compaction turns an old resourceVersion into 410 Gone (cached types answer from memory).
SESSION_APISERVER_ARGS = ("--watch-cache-sizes=podtemplates#0",)


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """A session-wide etcd + kube-apiserver (RBAC on) on loopback."""
    try:
        assets = find_assets()
    except MissingBinaryError as exc:
        pytest.fail(str(exc), pytrace=False)
    from .controlplane import ControlPlane

    with ControlPlane(assets=assets, apiserver_args=SESSION_APISERVER_ARGS) as plane:
        yield plane


@pytest.fixture
def namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace created for this test (deleted after; it stays Terminating: no controllers run)."""
    slug = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{slug}-{uuid.uuid4().hex[:6]}"
    control_plane.request_json(
        "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )
    yield name
    control_plane.request("DELETE", f"/api/v1/namespaces/{name}")


@pytest.fixture
def fault_proxy(control_plane: ControlPlane) -> Iterator[FaultProxy]:
    """A fault-injecting TCP proxy in front of the apiserver; ``control_plane.kubeconfig(server=proxy.url)``."""
    # The apiserver may be restarted on the same port, so the proxy targets the port, not a process.
    with FaultProxy("127.0.0.1", control_plane.apiserver_port) as proxy:
        yield proxy
