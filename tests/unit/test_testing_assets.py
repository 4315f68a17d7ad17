"""Binary lookup follows the envtest order and a missing binary names the install command."""

from __future__ import annotations

from pathlib import Path

import pytest

from informers.testing import assets as assets_mod
from informers.testing.assets import INSTALL_COMMAND, MissingBinaryError, find_assets


def _exe(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    for var in ("TEST_ASSET_ETCD", "TEST_ASSET_KUBE_APISERVER", "KUBEBUILDER_ASSETS"):
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
    _exe(cached / "etcd"), _exe(cached / "kube-apiserver")
    monkeypatch.setattr(assets_mod, "_go", lambda: pytest.fail("must not build what is cached"))
    assert assets_mod.install(quiet=True) == cached
