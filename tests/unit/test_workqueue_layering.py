"""The queue and rate-limiter modules stay Kubernetes-free: standard library, anyio, and only the
generic ``informers.clock`` / ``informers._tokenbucket`` / ``informers._bridge``, plus
``informers.errors`` for the root of the exception tree (checked on the source, so a stray import of ``kubernetes``,
``prometheus_client`` or another ``informers`` module fails here)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import controllers

MODULES = ["request", "ratelimit", "workqueue", "delaying", "ratelimited"]
ALLOWED_THIRD_PARTY = {"anyio"}
# errors: the queue's exceptions derive from the project's root, InformerdError; _bridge: the one
# thread<->loop hand-off (anyio only), through which parked tasks are woken.
ALLOWED_INFORMERS = {"informers._bridge", "informers.clock", "informers.errors", "informers._tokenbucket"}
ALLOWED_SIBLINGS = {"request", "ratelimit", "workqueue", "delaying", "ratelimited"}


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
    return found


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_only_generic_dependencies(module: str) -> None:
    path = Path(controllers.__file__).parent / f"{module}.py"
    bad = set()
    for name in imports_of(path):
        if name.startswith("."):
            if name.lstrip(".") not in ALLOWED_SIBLINGS:
                bad.add(name)
        elif name.startswith("informers"):
            if name not in ALLOWED_INFORMERS:
                bad.add(name)
        elif name.split(".")[0] not in sys.stdlib_module_names | ALLOWED_THIRD_PARTY | {"__future__"}:
            bad.add(name)
    assert bad == set()


@pytest.mark.parametrize("module", MODULES)
def test_module_all_is_exact_and_sorted(module: str) -> None:
    mod = __import__(f"controllers.{module}", fromlist=["__all__"])
    names = mod.__all__
    assert names == sorted(names)
    public = {
        n for n, v in vars(mod).items() if not n.startswith("_") and getattr(v, "__module__", None) == mod.__name__
    }
    assert set(names) == public
