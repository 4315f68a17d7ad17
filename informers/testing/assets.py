"""Finding, and if needed building, the binaries the kit runs: etcd, kube-apiserver, promtool and helm.

Lookup per binary follows the envtest convention: ``TEST_ASSET_<NAME>``, then ``$KUBEBUILDER_ASSETS``,
then our per-user cache (``$INFORMERD_CACHE_DIR``, else ``$XDG_CACHE_HOME/informerd``, else
``~/.cache/informerd``), then ``/usr/local/kubebuilder/bin``. ``install()`` builds the pinned versions
with the machine's Go into that cache: etcd and kube-apiserver in one directory per version pair,
promtool (for ``promtool check metrics`` in the metrics tests) in one per Prometheus version, helm
(the chart tests) in one per Helm version.
promtool cannot be ``go install``-ed (the prometheus module has carried ``replace`` directives) and
no git clone is needed: the module source comes from the Go module proxy (``go mod download``) and
is built in a writable temporary copy. Invariant: a binary appears in the cache only complete (it
is built to a temporary name and renamed), so a second ``install()`` returns at once.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import InformerdError
from .versions import (
    ETCD_VERSION,
    HELM_KUBERNETES_MINOR,
    HELM_VERSION,
    KUBERNETES_VERSION,
    PROMETHEUS_VERSION,
    asset_set_name,
    prometheus_module_version,
)

__all__ = [
    "INSTALL_COMMAND",
    "AssetBuildError",
    "Assets",
    "MissingBinaryError",
    "cache_dir",
    "find_assets",
    "find_helm",
    "find_promtool",
    "install",
]

INSTALL_COMMAND = "python -m informers.testing install"
_SYSTEM_DIR = Path("/usr/local/kubebuilder/bin")


class MissingBinaryError(InformerdError, FileNotFoundError):
    """A control-plane binary was not found anywhere the kit looks."""

    def __init__(self, name: str, searched: list[str]) -> None:
        self.name = name
        self.searched = searched
        super().__init__(
            f"{name} not found (looked in: {', '.join(searched)}). "
            f"Build it with `{INSTALL_COMMAND}`, or point TEST_ASSET_{_env_name(name)} or "
            f"KUBEBUILDER_ASSETS at an existing binary."
        )


class AssetBuildError(InformerdError, RuntimeError):
    """Building a binary with Go failed; the message carries the command and its output tail."""


def _env_name(binary: str) -> str:
    return binary.upper().replace("-", "_")


def cache_dir() -> Path:
    if os.environ.get("INFORMERD_CACHE_DIR"):
        return Path(os.environ["INFORMERD_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "informerd"


def _asset_dir() -> Path:
    return cache_dir() / "assets" / asset_set_name()


def _promtool_dir() -> Path:
    return cache_dir() / "assets" / f"prometheus-{PROMETHEUS_VERSION}"


def _helm_dir() -> Path:
    return cache_dir() / "assets" / f"helm-{HELM_VERSION}"


@dataclass(frozen=True)
class Assets:
    etcd: Path
    kube_apiserver: Path


def _find(name: str, cached: Path | None = None) -> Path:
    candidates: list[Path] = []
    if os.environ.get(f"TEST_ASSET_{_env_name(name)}"):
        candidates.append(Path(os.environ[f"TEST_ASSET_{_env_name(name)}"]))
    if os.environ.get("KUBEBUILDER_ASSETS"):
        candidates.append(Path(os.environ["KUBEBUILDER_ASSETS"]) / name)
    candidates += [(cached or _asset_dir()) / name, _SYSTEM_DIR / name]
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise MissingBinaryError(name, [str(p) for p in candidates])


def find_assets() -> Assets:
    """Locate both binaries or raise ``MissingBinaryError`` naming the first one missing."""
    return Assets(etcd=_find("etcd"), kube_apiserver=_find("kube-apiserver"))


def find_promtool() -> Path:
    """Locate ``promtool`` (``TEST_ASSET_PROMTOOL``, ``$KUBEBUILDER_ASSETS``, the cache) or raise
    ``MissingBinaryError``."""
    return _find("promtool", _promtool_dir())


def find_helm() -> Path:
    """Locate ``helm`` (``TEST_ASSET_HELM``, ``$KUBEBUILDER_ASSETS``, the cache) or raise
    ``MissingBinaryError``."""
    return _find("helm", _helm_dir())


def _go() -> str:
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if go is None:
        raise AssetBuildError("the Go toolchain (`go`) is needed to build etcd and kube-apiserver")
    return go


def _run(cmd: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> str:
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=None if env is None else {**os.environ, **env},
        )
        out.write(proc.stdout)
    if proc.returncode != 0:
        tail = proc.stdout.decode(errors="replace")[-3000:]
        raise AssetBuildError(f"`{' '.join(cmd)}` failed in {cwd} (exit {proc.returncode}):\n{tail}")
    return proc.stdout.decode(errors="replace")


def _staging_modules(go: str, work: Path, log: Path) -> list[str]:
    """The k8s.io staging modules k8s.io/kubernetes requires at v0.0.0 (they need replaces)."""
    info = json.loads(_run([go, "mod", "download", "-json", f"k8s.io/kubernetes@v{KUBERNETES_VERSION}"], work, log))
    mod_text = Path(info["GoMod"]).read_text()
    return sorted(set(re.findall(r"^\s+(k8s\.io/[\w.-]+) v0\.0\.0\s*$", mod_text, flags=re.M)))


def _build_kube_apiserver(go: str, target: Path, log: Path) -> None:
    work = cache_dir() / "build" / f"kube-apiserver-{KUBERNETES_VERSION}"
    work.mkdir(parents=True, exist_ok=True)
    major, minor, _ = KUBERNETES_VERSION.split(".")
    (work / "go.mod").write_text("module informerd.local/kube-apiserver-build\n\ngo 1.26.0\n")
    staging = _staging_modules(go, work, log)
    staging_version = f"v0.{minor}.{KUBERNETES_VERSION.split('.')[2]}"
    replaces = "".join(f"\t{m} => {m} {staging_version}\n" for m in staging)
    (work / "go.mod").write_text(
        "module informerd.local/kube-apiserver-build\n\ngo 1.26.0\n\n"
        f"require k8s.io/kubernetes v{KUBERNETES_VERSION}\n\nreplace (\n{replaces})\n"
    )
    pkg = "k8s.io/kubernetes/cmd/kube-apiserver"
    _run([go, "get", f"{pkg}@v{KUBERNETES_VERSION}"], work, log)
    # Without these, /version reports a placeholder that helm and kubectl reject.
    ldflags = ["-s", "-w"]
    for module in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        ldflags += [
            f"-X {module}.gitVersion=v{KUBERNETES_VERSION}",
            f"-X {module}.gitMajor={major}",
            f"-X {module}.gitMinor={minor}",
            f"-X {module}.gitTreeState=clean",
        ]
    _run([go, "build", "-trimpath", "-ldflags", " ".join(ldflags), "-o", str(target), pkg], work, log)


def _build_etcd(go: str, target: Path, log: Path) -> None:
    work = cache_dir() / "build" / f"etcd-{ETCD_VERSION}"
    work.mkdir(parents=True, exist_ok=True)
    (work / "go.mod").write_text(
        f"module informerd.local/etcd-build\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 v{ETCD_VERSION}\n"
    )
    pkg = "go.etcd.io/etcd/server/v3"
    _run([go, "get", f"{pkg}@v{ETCD_VERSION}"], work, log)
    _run([go, "build", "-trimpath", "-ldflags", "-s -w", "-o", str(target), pkg], work, log)


def _build_promtool(go: str, target: Path, log: Path) -> None:
    """promtool from the prometheus module's source (module proxy download), built in a copy."""
    module = f"github.com/prometheus/prometheus@{prometheus_module_version()}"
    work = cache_dir() / "build" / f"prometheus-{PROMETHEUS_VERSION}"
    work.mkdir(parents=True, exist_ok=True)
    info = json.loads(_run([go, "mod", "download", "-json", module], work, log, env={"GO111MODULE": "on"}))
    if not info.get("Dir"):
        raise AssetBuildError(f"`go mod download {module}` gave no source directory: {info.get('Error', info)}")
    with tempfile.TemporaryDirectory(prefix="promtool-src-", dir=work) as tmp:
        src = Path(tmp) / "prometheus"
        shutil.copytree(info["Dir"], src)  # the module cache is read-only
        for root, _dirs, files in os.walk(src):
            for entry in (root, *(os.path.join(root, f) for f in files)):
                os.chmod(entry, os.stat(entry).st_mode | 0o200)
        ldflags = f"-s -w -X github.com/prometheus/common/version.Version={PROMETHEUS_VERSION}"
        # GOWORK=off: the module ships a go.work naming directories its zip does not contain.
        _run(
            [go, "build", "-trimpath", "-ldflags", ldflags, "-o", str(target), "./cmd/promtool"],
            src,
            log,
            env={"GOWORK": "off"},
        )


def _build_helm(go: str, target: Path, log: Path) -> None:
    """helm from its Go module (no ``replace`` directives, so a wrapper module builds it)."""
    work = cache_dir() / "build" / f"helm-{HELM_VERSION}"
    work.mkdir(parents=True, exist_ok=True)
    (work / "go.mod").write_text(
        f"module informerd.local/helm-build\n\ngo 1.26.0\n\nrequire helm.sh/helm/v3 v{HELM_VERSION}\n"
    )
    pkg = "helm.sh/helm/v3/cmd/helm"
    _run([go, "get", f"{pkg}@v{HELM_VERSION}"], work, log)
    # As helm's Makefile: the version `helm version` prints, and the Kubernetes version that
    # `helm template` and `helm lint` assume (its k8s.io modules' minor).
    ldflags = ["-s", "-w", f"-X helm.sh/helm/v3/internal/version.version=v{HELM_VERSION}"]
    ldflags.append("-X helm.sh/helm/v3/internal/version.gitTreeState=clean")
    for module in ("helm.sh/helm/v3/pkg/lint/rules", "helm.sh/helm/v3/pkg/chartutil"):
        ldflags += [f"-X {module}.k8sVersionMajor=1", f"-X {module}.k8sVersionMinor={HELM_KUBERNETES_MINOR}"]
    _run([go, "build", "-trimpath", "-ldflags", " ".join(ldflags), "-o", str(target), pkg], work, log)


_Builder = Callable[[str, Path, Path], None]


def install(*, quiet: bool = False) -> Path:
    """Build any missing pinned binary into the cache; return the directory holding etcd and
    kube-apiserver (promtool and helm are cached beside it, see ``find_promtool``, ``find_helm``)."""
    target_dir = _asset_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    log = cache_dir() / "build" / "build.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    builders: list[tuple[str, Path, _Builder]] = [
        ("etcd", target_dir, _build_etcd),
        ("kube-apiserver", target_dir, _build_kube_apiserver),
        ("promtool", _promtool_dir(), _build_promtool),
        ("helm", _helm_dir(), _build_helm),
    ]
    for name, directory, build in builders:
        directory.mkdir(parents=True, exist_ok=True)
        final = directory / name
        if final.is_file():
            continue
        go = _go()
        started = time.monotonic()
        if not quiet:
            print(f"building {name} (log: {log}) ...", file=sys.stderr, flush=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", dir=directory)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            build(go, tmp, log)
            tmp.chmod(0o755)
            tmp.replace(final)
        finally:
            tmp.unlink(missing_ok=True)
        if not quiet:
            print(f"built {name} in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return target_dir
