"""informers.testing: a real etcd + kube-apiserver for tests, a fault proxy, and pytest fixtures.

The envtest pattern for Python: binaries from ``TEST_ASSET_*`` / ``KUBEBUILDER_ASSETS`` or built into a
per-user cache by ``python -m informers.testing install``. Needs the ``testing`` extra (cryptography).
"""

from .assets import (
    INSTALL_COMMAND,
    AssetBuildError,
    Assets,
    MissingBinaryError,
    cache_dir,
    find_assets,
    find_promtool,
    install,
)
from .controlplane import ControlPlane, ControlPlaneError, free_port
from .proxy import FaultProxy, ProxyMode, ProxyStatistics
from .versions import ETCD_VERSION, KUBERNETES_VERSION, PROMETHEUS_VERSION

__all__ = [
    "AssetBuildError",
    "Assets",
    "ControlPlane",
    "ControlPlaneError",
    "ETCD_VERSION",
    "FaultProxy",
    "INSTALL_COMMAND",
    "KUBERNETES_VERSION",
    "MissingBinaryError",
    "PROMETHEUS_VERSION",
    "ProxyMode",
    "ProxyStatistics",
    "cache_dir",
    "find_assets",
    "find_promtool",
    "free_port",
    "install",
]
