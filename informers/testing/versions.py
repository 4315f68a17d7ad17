"""The pinned versions of the binaries the kit builds: the one place to change them.

Kubernetes 1.37 is the newest minor whose module builds with Go 1.26 (its go.mod says go 1.26.0);
etcd 3.5.35 is the newest 3.5.x (3.5.13+ has the watch-progress support streaming lists need).
Prometheus 3.16.0 (Go module ``github.com/prometheus/prometheus`` v0.316.0, go 1.26.7) provides
``promtool``, which the metrics tests run as ``promtool check metrics``.
Helm 3.21.4 (module ``helm.sh/helm/v3``) lints, renders and installs the chart in the chart tests.
Helm 3, not 4: 3.x is the line users' clusters and CI run today (Helm 4 changed defaults such as
server-side apply and the plugin system), and a chart (``apiVersion: v2``) that passes Helm 3
works under Helm 4 as well. 3.21.4 is the newest 3.x the Go module proxy serves that builds with
this Go (3.22.0 is served but not approved here); its Kubernetes modules are at v0.36.
"""

from __future__ import annotations

__all__ = [
    "ETCD_VERSION",
    "HELM_KUBERNETES_MINOR",
    "HELM_VERSION",
    "KUBERNETES_VERSION",
    "PROMETHEUS_VERSION",
    "asset_set_name",
    "prometheus_module_version",
]

KUBERNETES_VERSION = "1.37.2"
ETCD_VERSION = "3.5.35"
PROMETHEUS_VERSION = "3.16.0"
HELM_VERSION = "3.21.4"
HELM_KUBERNETES_MINOR = "36"
"""The Kubernetes minor of helm's k8s.io modules (v0.36.x): its default ``.Capabilities.KubeVersion``."""


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
