"""The pinned versions of the binaries the kit builds: the one place to change them.

Kubernetes 1.37 is the newest minor whose module builds with Go 1.26 (its go.mod says go 1.26.0);
etcd 3.5.35 is the newest 3.5.x (3.5.13+ has the watch-progress support streaming lists need).
Prometheus 3.16.0 (Go module ``github.com/prometheus/prometheus`` v0.316.0, go 1.26.7) provides
``promtool``, which the metrics tests run as ``promtool check metrics``.
"""

from __future__ import annotations

__all__ = ["ETCD_VERSION", "KUBERNETES_VERSION", "PROMETHEUS_VERSION", "asset_set_name", "prometheus_module_version"]

KUBERNETES_VERSION = "1.37.2"
ETCD_VERSION = "3.5.35"
PROMETHEUS_VERSION = "3.16.0"


def asset_set_name(kubernetes: str = KUBERNETES_VERSION, etcd: str = ETCD_VERSION) -> str:
    """Directory name of one built set, e.g. ``k8s-1.37.2-etcd-3.5.35``."""
    return f"k8s-{kubernetes}-etcd-{etcd}"


def prometheus_module_version(release: str = PROMETHEUS_VERSION) -> str:
    """The Go module version of a Prometheus release: 3.16.0 is ``v0.316.0`` (2.x releases were
    ``v0.<minor>.<patch>`` of 2.<minor>; 3.x add 300 to the minor)."""
    major, minor, patch = (int(p) for p in release.split("."))
    if major < 2:
        raise ValueError(f"no Go module version for Prometheus {release}")
    return f"v0.{(major - 2) * 300 + minor if major > 2 else minor}.{patch}"
