"""The curated public API: each package's ``__all__`` is exact, sorted and importable, and every
module declares an ``__all__`` whose names exist (a name dropped or misspelled fails here)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

PACKAGES = ["informers", "controllers"]


@pytest.mark.parametrize("package", PACKAGES)
def test_package_all_is_sorted_unique_and_resolvable(package: str):
    mod = importlib.import_module(package)
    names = list(mod.__all__)
    assert names == sorted(names), "keep __all__ sorted"
    assert len(names) == len(set(names))
    missing = [n for n in names if not hasattr(mod, n)]
    assert missing == []


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_declares_an_exact_all(package: str):
    pkg = importlib.import_module(package)
    for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."):
        if info.name.endswith("__main__"):
            continue
        mod = importlib.import_module(info.name)
        assert hasattr(mod, "__all__"), f"{info.name} has no __all__"
        missing = [n for n in mod.__all__ if not hasattr(mod, n)]
        assert missing == [], f"{info.name}: {missing}"


def test_package_exports_what_its_modules_export_publicly():
    import informers

    # the main entry points of every layer are reachable from the package root
    for name in ("ApiClient", "InformerFactory", "SharedInformer", "Store", "Watcher", "load_config",
                 "ObjectDeleted", "DeletedFinalStateUnknown", "Resource", "Discovery", "InformerOptions"):
        assert name in informers.__all__
