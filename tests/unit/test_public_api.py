"""The tiered public API.

* Each package's top (``informers``, ``controllers``) exports a short, sorted list of names for
  users; everything else lives in documented submodules (extension points) or behind ``_``.
* Every module's ``__all__`` is exactly the public names it *defines* (classes, functions, constants
  and aliases not starting with ``_``), plus any it re-exports from private ``_`` modules, read from
  its source, so a helper cannot slip into the API
  unnoticed and a public definition cannot be left out of ``__all__``.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

PACKAGES = ["informers", "controllers"]
TOP_LEVEL_LIMIT = 25  # "about 20 names" per package for users


def _modules() -> list[str]:
    names: list[str] = []
    for package in PACKAGES:
        pkg = importlib.import_module(package)
        names.append(package)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."):
            if not info.name.endswith("__main__"):
                names.append(info.name)
    return names


def _ruff_order(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps ``__all__`` in: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def _from_private_modules(path: Path) -> set[str]:
    """Names a module imports from private (``_``) modules: a public module may re-export them."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module and node.module.rsplit(".", 1)[-1].startswith("_")
        for alias in node.names
    }


def _defined_public_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    names.add(target.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if not n.startswith("_")}


@pytest.mark.parametrize("package", PACKAGES)
def test_package_top_is_short_sorted_and_resolvable(package: str):
    mod = importlib.import_module(package)
    names = list(mod.__all__)
    assert names == sorted(names, key=_ruff_order), "keep __all__ sorted (ruff --fix does it)"
    assert len(names) == len(set(names))
    assert [n for n in names if not hasattr(mod, n)] == []
    assert len(names) <= TOP_LEVEL_LIMIT, f"{package} exports {len(names)} names; tier the rest into submodules"


@pytest.mark.parametrize("module", [m for m in _modules() if m not in PACKAGES])
def test_every_module_all_is_exactly_what_it_defines(module: str):
    mod = importlib.import_module(module)
    path = Path(mod.__file__ or "")
    declared = getattr(mod, "__all__", None)
    assert declared is not None, f"{module} has no __all__"
    assert sorted(declared, key=_ruff_order) == list(declared), f"{module}: keep __all__ sorted (ruff --fix)"
    if path.name == "__init__.py":  # a package re-exports its modules' names
        assert [n for n in declared if not hasattr(mod, n)] == []
        return
    defined = _defined_public_names(path)
    reexported = set(declared) & _from_private_modules(path)  # the public face of a private module
    assert set(declared) - reexported == defined, (
        f"{module}: exported but not defined here: {sorted(set(declared) - defined)}; "
        f"defined publicly but not exported (export it or prefix it with _): {sorted(defined - set(declared))}"
    )


def test_a_reconciler_needs_at_most_five_names():
    """The README's controller example imports everything it uses from the front door."""
    import controllers

    for name in ("Manager", "Context", "Result", "TerminalError"):
        assert name in controllers.__all__


def test_the_entry_points_of_each_layer_are_reachable():
    import informers

    for name in (
        "ApiClient",
        "InformerFactory",
        "SharedInformer",
        "load_config",
        "ObjectDeleted",
        "DeletedFinalStateUnknown",
        "Resource",
        "InformerOptions",
        "InformerdError",
    ):
        assert name in informers.__all__
