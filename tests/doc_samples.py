"""Turns a Markdown guide's code blocks into files: a fenced block whose first line is a comment
naming a path (``# greeting_plugin/reconciler.py``) is that file's whole content. The guide tests
write them into a temporary directory and import them, so the samples are run, not just read."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

__all__ = ["code_blocks", "imported_samples", "sample_files", "write_samples"]

_FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
_PATH = re.compile(r"^# ([\w./-]+\.(?:py|toml|yaml))\n")


def code_blocks(markdown: str) -> list[tuple[str, str]]:
    """``(language, text)`` of every fenced block, in order."""
    return [(m.group(1), m.group(2)) for m in _FENCE.finditer(markdown)]


def sample_files(markdown: str) -> dict[str, str]:
    """``{path: content}`` of the blocks that name a file."""
    files: dict[str, str] = {}
    for _, text in code_blocks(markdown):
        match = _PATH.match(text)
        if match:
            assert match.group(1) not in files, f"two blocks name {match.group(1)}"
            files[match.group(1)] = text
    return files


def write_samples(markdown: str, root: Path) -> dict[str, Path]:
    out = {}
    for name, text in sample_files(markdown).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        out[name] = path
    return out


@contextmanager
def imported_samples(markdown: str, root: Path, package: str) -> Iterator[dict[str, ModuleType]]:
    """Write the samples under ``root``, put it first on ``sys.path`` and import every sample
    module (test modules under a private name, so they never shadow this suite's ``tests``);
    undone on exit."""
    written = write_samples(markdown, root)
    sys.path.insert(0, str(root))
    modules: dict[str, ModuleType] = {}
    try:
        for name, path in written.items():
            if not name.endswith(".py"):
                continue
            if name.startswith(f"{package}/"):
                modules[name] = importlib.import_module(name[:-3].replace("/", ".").removesuffix(".__init__"))
            else:
                spec = importlib.util.spec_from_file_location(f"_guide_{path.stem}", path)
                assert spec is not None and spec.loader is not None
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                modules[name] = module
        yield modules
    finally:
        sys.path.remove(str(root))
        for loaded in [m for m in sys.modules if m == package or m.startswith(f"{package}.")]:
            del sys.modules[loaded]
