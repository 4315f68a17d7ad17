"""Layering rules from DESIGN.md, checked on the source: third-party imports confined to one module
each, and ``informers`` never importing ``controllers`` (also an import-linter contract in setup.cfg)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def _modules(package: str) -> dict[str, set[str]]:
    return {str(p.relative_to(ROOT)): _imports(p) for p in (ROOT / package).rglob("*.py")}


def test_only_the_config_module_imports_kubernetes_in_informers():
    users = sorted(m for m, imps in _modules("informers").items() if "kubernetes" in imps)
    assert users == ["informers/config.py"]


def test_only_the_metrics_module_imports_prometheus_client():
    users = sorted(
        m
        for package in ("informers", "controllers")
        for m, imps in _modules(package).items()
        if "prometheus_client" in imps
    )
    assert users == ["controllers/metrics.py"]


def test_only_the_compression_module_imports_zstandard():
    users = sorted(
        m for package in ("informers", "controllers") for m, imps in _modules(package).items() if "zstandard" in imps
    )
    assert users == ["informers/compression.py"]


def test_informers_never_imports_controllers_or_prometheus():
    for module, imps in _modules("informers").items():
        assert "controllers" not in imps, module
        assert "prometheus_client" not in imps, module


def test_import_linter_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is part of the dev extra"
    proc = subprocess.run([exe, "--config", str(ROOT / "setup.cfg")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
