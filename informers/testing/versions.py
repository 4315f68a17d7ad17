"""The pinned versions of the control-plane binaries the kit builds: the one place to change them.

Kubernetes 1.37 is the newest minor whose module builds with Go 1.26 (its go.mod says go 1.26.0);
etcd 3.5.35 is the newest 3.5.x (3.5.13+ has the watch-progress support streaming lists need).
"""

from __future__ import annotations

__all__ = ["ETCD_VERSION", "KUBERNETES_VERSION", "asset_set_name"]

KUBERNETES_VERSION = "1.37.2"
ETCD_VERSION = "3.5.35"


def asset_set_name(kubernetes: str = KUBERNETES_VERSION, etcd: str = ETCD_VERSION) -> str:
    """Directory name of one built set, e.g. ``k8s-1.37.2-etcd-3.5.35``."""
    return f"k8s-{kubernetes}-etcd-{etcd}"
