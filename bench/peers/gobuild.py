"""Builds the Go peers (``bench/clientgo``, ``bench/controllerruntime``, both importing the shared
package ``bench/gopeer``) with the machine's Go into
``~/.cache/informerd/bench/<name>-<hash of their sources and Go version>``, once; the module proxy serves
their pinned dependencies (``go.mod``/``go.sum``). Invariant: a binary appears under its final name
only complete (built under a temporary name, then renamed)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent


class GoBuildError(RuntimeError):
    pass


def go_tool() -> str:
    return shutil.which("go") or "/usr/local/go/bin/go"


def go_version() -> str:
    return subprocess.run([go_tool(), "version"], capture_output=True, text=True, check=True).stdout.strip()


def module_version(name: str, module: str) -> str:
    """The version of ``module`` that ``bench/<name>/go.mod`` requires ("" if absent)."""
    for line in (BENCH_DIR / name / "go.mod").read_text().splitlines():
        parts = line.split()
        if module in parts:
            return parts[parts.index(module) + 1]
    return ""


def binary(name: str) -> Path:
    from informers.testing.assets import cache_dir

    src = BENCH_DIR / name
    digest = hashlib.sha256()
    shared = BENCH_DIR / "gopeer"  # the package both peers import (replace => ../gopeer)
    for path in [
        *sorted(src.glob("*.go")),
        src / "go.mod",
        src / "go.sum",
        *sorted(shared.glob("*.go")),
        shared / "go.mod",
    ]:
        digest.update(str(path.relative_to(BENCH_DIR)).encode() + b"\0" + path.read_bytes())
    digest.update(go_version().encode())
    target = cache_dir() / "bench" / f"{name}-{digest.hexdigest()[:12]}"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    proc = subprocess.run(
        [go_tool(), "build", "-trimpath", "-o", str(tmp), "."],
        cwd=src,
        env={**os.environ, "GOFLAGS": "-buildvcs=false"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise GoBuildError(f"building bench/{name} failed:\n{proc.stdout[-3000:]}")
    tmp.replace(target)
    return target
