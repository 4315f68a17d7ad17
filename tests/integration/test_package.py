"""The package as users get it, which is what the Dockerfile installs: ``python -m build`` makes the
sdist and, from it, the wheel; ``twine check --strict`` accepts both; the wheel carries ``py.typed``
for both packages and nothing else (no tests, benches or examples); installed (not editable) into a
fresh virtualenv with the example plugin package's wheel, ``informerd version``, ``plugins`` and
``check-config`` work there, from the installed files and not from this checkout.

Slow (a build and a virtualenv: about a minute with pip's cache warm), hence the marker. Dependencies
come from the package index pip is configured with; wheels are cached in the session's tmp dir."""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]  # a cold pip cache downloads every dependency

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "examples" / "backup-controller"
PACKAGES = ("informers", "controllers")


def version() -> str:
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    return setup["metadata"]["version"]


def run(*cmd: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    done = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sdist and wheel of informerd (the wheel built from the sdist, as pip would) and the plugin's wheel."""
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--outdir", out, ROOT, cwd=out)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", out, PLUGIN, cwd=out)
    return out


def only(dist: Path, pattern: str) -> Path:
    found = sorted(dist.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def test_twine_accepts_the_sdist_and_the_wheel(dist: Path) -> None:
    files = [only(dist, f"informerd-{version()}.tar.gz"), only(dist, f"informerd-{version()}-py3-none-any.whl")]
    out = run(sys.executable, "-m", "twine", "check", "--strict", *files, cwd=dist)
    assert out.count("PASSED") == 2, out


def test_the_wheel_holds_the_two_typed_packages_and_nothing_else(dist: Path) -> None:
    with zipfile.ZipFile(only(dist, "informerd-*.whl")) as wheel:
        names = wheel.namelist()
        entry_points = wheel.read(f"informerd-{version()}.dist-info/entry_points.txt").decode()
    tops = {name.split("/")[0] for name in names}
    assert tops == {*PACKAGES, f"informerd-{version()}.dist-info"}, tops
    for package in PACKAGES:
        assert f"{package}/py.typed" in names
    parts = {part for name in names for part in name.split("/")[:-1]}
    assert not parts & {"tests", "bench", "examples", "charts", "__pycache__"}, parts
    assert not [n for n in names if n.endswith((".pyc", ".pyo"))]
    # every module of the checkout is in the wheel (nothing lost between the tree, the sdist and the wheel)
    tracked = {str(p.relative_to(ROOT)) for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    assert tracked <= set(names), sorted(tracked - set(names))[:10]
    assert "informerd = controllers.cli:main" in entry_points
    # the Apache-2.0 text the metadata names travels with the wheel
    assert [n for n in names if n.startswith(f"informerd-{version()}.dist-info/") and n.endswith("LICENSE")], names


def test_the_sdist_builds_the_wheel_and_leaves_the_repository_out(dist: Path) -> None:
    with tarfile.open(only(dist, "informerd-*.tar.gz")) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"LICENSE", "setup.cfg", "setup.py", "pyproject.toml", "README.md", "MANIFEST.in", "PKG-INFO"} <= names
    assert {"informers/py.typed", "controllers/py.typed", "controllers/cli.py"} <= names
    tops = {name.split("/")[0] for name in names}
    assert not tops & {"tests", "bench", "examples", "charts", ".ci", ".venv"}, tops


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the informerd wheel and the example plugin's wheel (no editable install)."""
    home = tmp_path_factory.mktemp("venv")
    venv = home / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=home)
    env = {**os.environ, "PIP_CACHE_DIR": str(tmp_path_factory.getbasetemp() / "pip-cache")}
    env.pop("PYTHONPATH", None)
    wheels = [only(dist, "informerd-*.whl"), only(dist, "informerd_backup_controller-*.whl")]
    run(
        venv / "bin" / "python",
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        *wheels,
        cwd=home,
        env=env,
    )
    return venv


def informerd(venv: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("INFORMERD_")}
    return run(venv / "bin" / "informerd", *args, cwd=venv.parent, env=env, timeout=120)


def test_installed_from_the_wheel_not_from_this_checkout(installed: Path) -> None:
    where = run(
        installed / "bin" / "python",
        "-c",
        "import controllers, informers, backup_controller; "
        "print(controllers.__file__); print(informers.__file__); print(backup_controller.__file__)",
        cwd=installed.parent,
    )
    for line in where.split():
        assert Path(line).is_relative_to(installed) and "site-packages" in line, line
    pip_list = json.loads(run(installed / "bin" / "python", "-m", "pip", "list", "--format=json", cwd=installed.parent))
    editable = [p for p in pip_list if p.get("editable_project_location")]
    assert editable == [], editable


def test_informerd_version(installed: Path) -> None:
    assert informerd(installed, "version").strip() == version()


def test_informerd_plugins_lists_the_example_with_distribution_and_version(installed: Path) -> None:
    plugin_version = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]["version"]
    found = {(p["kind"], p["name"]): p for p in json.loads(informerd(installed, "plugins", "-o", "json"))}
    for kind, name, value in (
        ("reconciler", "backup", "backup_controller.reconciler:backup"),
        ("handler", "event-log", "backup_controller.handlers:event_log"),
    ):
        plugin = found.get((kind, name))
        assert plugin is not None, found
        assert plugin["value"] == value
        assert plugin["distribution"] == "informerd-backup-controller" and plugin["version"] == plugin_version
    text = informerd(installed, "plugins")
    assert any(
        line.split()[:2] == ["reconciler", "backup"] and "informerd-backup-controller" in line
        for line in text.splitlines()
    ), text


def configs() -> dict[str, str]:
    """The example's config file and, once the chart is on this branch, the chart's default ``config``."""
    out = {"example": (PLUGIN / "config.yaml").read_text()}
    values = ROOT / "charts" / "informerd" / "values.yaml"
    if values.exists():
        out["chart-default"] = yaml.safe_dump(yaml.safe_load(values.read_text())["config"])
    return out


@pytest.mark.parametrize("name", sorted(configs()))
def test_informerd_check_config_loads_the_plugins_of_the_config(installed: Path, tmp_path: Path, name: str) -> None:
    text = configs()[name]
    config = tmp_path / "config.yaml"
    config.write_text(text)  # outside the checkout, as a ConfigMap mount is
    parsed = yaml.safe_load(text)
    out = informerd(installed, "check-config", "--config", str(config))
    counts = f"{len(parsed.get('reconcilers', []))} reconciler(s), {len(parsed.get('handlers', []))} handler(s)"
    assert out.strip() == f"{config}: ok ({counts})"
    assert {r["plugin"] for r in parsed.get("reconcilers", [])} <= {"backup"}  # what this venv has installed


def test_a_config_naming_a_missing_plugin_fails_check_config(installed: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("reconcilers:\n  - plugin: not-installed\n    resource: v1/configmaps\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("INFORMERD_")}
    done = subprocess.run(
        [str(installed / "bin" / "informerd"), "check-config", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0 and "not-installed" in done.stdout + done.stderr, done


def test_informerd_config_schema(installed: Path) -> None:
    schema = json.loads(informerd(installed, "config-schema"))
    assert schema["title"] == "informerd daemon configuration"
