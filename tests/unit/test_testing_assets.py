"""Binary lookup follows the envtest order and a missing binary names the install command; promtool
and helm are found and cached the same way, keyed by their pinned versions."""

from __future__ import annotations

from pathlib import Path

import pytest

from informers.testing import assets as assets_mod
from informers.testing.assets import INSTALL_COMMAND, MissingBinaryError, find_assets, find_helm, find_promtool
from informers.testing.versions import HELM_VERSION, PROMETHEUS_VERSION, prometheus_module_version


def _exe(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    for var in (
        "TEST_ASSET_ETCD",
        "TEST_ASSET_KUBE_APISERVER",
        "TEST_ASSET_PROMTOOL",
        "TEST_ASSET_HELM",
        "KUBEBUILDER_ASSETS",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("INFORMERD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(assets_mod, "_SYSTEM_DIR", tmp_path / "system")
    return tmp_path


def test_missing_binary_names_it_and_the_install_command(isolated):
    with pytest.raises(MissingBinaryError) as info:
        find_assets()
    assert info.value.name == "etcd"
    assert INSTALL_COMMAND in str(info.value) and "KUBEBUILDER_ASSETS" in str(info.value)


def test_test_asset_variables_win_over_kubebuilder_assets(isolated, monkeypatch):
    kb = isolated / "kb"
    _exe(kb / "etcd"), _exe(kb / "kube-apiserver")
    special = _exe(isolated / "special" / "my-etcd")
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(kb))
    monkeypatch.setenv("TEST_ASSET_ETCD", str(special))
    found = find_assets()
    assert found.etcd == special
    assert found.kube_apiserver == kb / "kube-apiserver"


def test_cache_directory_is_used_when_nothing_is_set(isolated):
    cached = assets_mod._asset_dir()
    _exe(cached / "etcd"), _exe(cached / "kube-apiserver")
    assert find_assets().kube_apiserver == cached / "kube-apiserver"
    assert "k8s-" in str(cached) and "etcd-" in str(cached)  # keyed by the pinned versions


def test_install_is_idempotent_when_binaries_are_cached(isolated, monkeypatch):
    cached = assets_mod._asset_dir()
    _exe(cached / "etcd"), _exe(cached / "kube-apiserver"), _exe(assets_mod._promtool_dir() / "promtool")
    _exe(assets_mod._helm_dir() / "helm")
    monkeypatch.setattr(assets_mod, "_go", lambda: pytest.fail("must not build what is cached"))
    assert assets_mod.install(quiet=True) == cached


def test_install_builds_only_a_missing_promtool(isolated, monkeypatch):
    cached = assets_mod._asset_dir()
    _exe(cached / "etcd"), _exe(cached / "kube-apiserver"), _exe(assets_mod._helm_dir() / "helm")
    built: list[str] = []

    def fake_build(go, target, log):
        built.append(go)
        target.write_text("#!/bin/sh\n")

    monkeypatch.setattr(assets_mod, "_go", lambda: "go")
    monkeypatch.setattr(assets_mod, "_build_promtool", fake_build)
    monkeypatch.setattr(assets_mod, "_build_etcd", lambda *a: pytest.fail("etcd is cached"))
    assets_mod.install(quiet=True)
    assert built == ["go"]
    assert find_promtool() == assets_mod._promtool_dir() / "promtool"
    assert f"prometheus-{PROMETHEUS_VERSION}" in str(find_promtool())  # keyed by the pinned version


def test_promtool_lookup_follows_the_envtest_order(isolated, monkeypatch):
    with pytest.raises(MissingBinaryError) as info:
        find_promtool()
    assert "TEST_ASSET_PROMTOOL" in str(info.value) and INSTALL_COMMAND in str(info.value)
    kb = isolated / "kb"
    _exe(kb / "promtool")
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(kb))
    assert find_promtool() == kb / "promtool"
    special = _exe(isolated / "special" / "my-promtool")
    monkeypatch.setenv("TEST_ASSET_PROMTOOL", str(special))
    assert find_promtool() == special


def test_prometheus_releases_map_to_their_go_module_versions():
    assert prometheus_module_version("3.16.0") == "v0.316.0"
    assert prometheus_module_version("3.0.1") == "v0.300.1"
    assert prometheus_module_version("2.53.4") == "v0.53.4"


def test_install_builds_only_a_missing_helm_and_finds_it_by_version(isolated, monkeypatch):
    cached = assets_mod._asset_dir()
    _exe(cached / "etcd"), _exe(cached / "kube-apiserver"), _exe(assets_mod._promtool_dir() / "promtool")
    built: list[Path] = []

    def fake_build(go, target, log):
        built.append(target)
        target.write_text("#!/bin/sh\n")

    monkeypatch.setattr(assets_mod, "_go", lambda: "go")
    monkeypatch.setattr(assets_mod, "_build_helm", fake_build)
    monkeypatch.setattr(assets_mod, "_build_promtool", lambda *a: pytest.fail("promtool is cached"))
    with pytest.raises(MissingBinaryError) as info:
        find_helm()
    assert "TEST_ASSET_HELM" in str(info.value) and INSTALL_COMMAND in str(info.value)
    assets_mod.install(quiet=True)
    assert len(built) == 1 and built[0].parent == assets_mod._helm_dir()
    assert find_helm() == assets_mod._helm_dir() / "helm"
    assert f"helm-{HELM_VERSION}" in str(find_helm())  # keyed by the pinned version
    special = _exe(isolated / "special" / "my-helm")
    monkeypatch.setenv("TEST_ASSET_HELM", str(special))
    assert find_helm() == special
