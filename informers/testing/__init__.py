"""informers.testing: a real etcd + kube-apiserver for tests, a fault proxy, pytest fixtures, and
``informers.testing.fake.FakeCluster`` (an in-memory apiserver for fast unit tests).

The envtest pattern for Python: binaries from ``TEST_ASSET_*`` / ``KUBEBUILDER_ASSETS`` or built into a
per-user cache by ``python -m informers.testing install``. The control plane needs the ``testing``
extra (cryptography) and is imported on first use, so ``informers.testing.fake`` works without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .assets import (
    INSTALL_COMMAND,
    AssetBuildError,
    Assets,
    MissingBinaryError,
    cache_dir,
    find_assets,
    find_helm,
    find_promtool,
    install,
)
from .proxy import FaultProxy, ProxyMode, ProxyStatistics
from .versions import ETCD_VERSION, HELM_VERSION, KUBERNETES_VERSION, PROMETHEUS_VERSION

if TYPE_CHECKING:
    from .controlplane import ControlPlane, ControlPlaneError, free_port

__all__ = [
    "ETCD_VERSION",
    "HELM_VERSION",
    "INSTALL_COMMAND",
    "KUBERNETES_VERSION",
    "PROMETHEUS_VERSION",
    "AssetBuildError",
    "Assets",
    "ControlPlane",
    "ControlPlaneError",
    "FaultProxy",
    "MissingBinaryError",
    "ProxyMode",
    "ProxyStatistics",
    "cache_dir",
    "find_assets",
    "find_helm",
    "find_promtool",
    "free_port",
    "install",
]

_CONTROL_PLANE = frozenset({"ControlPlane", "ControlPlaneError", "free_port"})


def __getattr__(name: str) -> Any:
    # The control plane generates certificates with cryptography: import it only when asked for.
    if name in _CONTROL_PLANE:
        from . import controlplane

        return getattr(controlplane, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
