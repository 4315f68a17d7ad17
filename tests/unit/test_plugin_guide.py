"""docs/plugins.md is real: its files are written out and imported, its FakeCluster tests run,
its pyproject's entry points resolve, and its config, validated by the daemon's model, starts a
``manager_from_config`` daemon over a FakeCluster that reconciles Greetings with the guide's
plugins (the watches mapper included). The control-plane sample runs in
tests/integration/test_plugin_guide.py."""

from __future__ import annotations

import inspect
import tomllib
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest
import structlog

from controllers import plugins
from controllers.config import parse_config
from controllers.daemon import manager_from_config
from controllers.plugins import PluginError

from ..doc_samples import code_blocks, imported_samples, sample_files
from .conftest import wait_until_async

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
FAKE_TESTS = "tests/test_greeting.py"


@pytest.fixture
def guide(tmp_path: Path) -> Iterator[dict[str, ModuleType]]:
    configured = structlog.is_configured()
    with imported_samples(GUIDE.read_text(), tmp_path, "greeting_plugin") as modules:
        yield modules
    if not configured:  # capture_logs() leaves structlog "configured" (printing) behind it
        structlog.reset_defaults()


@pytest.fixture
def guide_entry_points(monkeypatch: pytest.MonkeyPatch, guide: dict[str, ModuleType]) -> dict[str, list[EntryPoint]]:
    """The guide's pyproject entry points, as if its package were installed."""
    project = tomllib.loads(sample_files(GUIDE.read_text())["pyproject.toml"])["project"]
    groups = {
        group: [EntryPoint(name, value, group) for name, value in eps.items()]
        for group, eps in project["entry-points"].items()
    }
    monkeypatch.setattr(plugins, "entry_points", lambda group: groups.get(group, []))
    return groups


def test_every_python_sample_is_a_file_the_tests_run():
    blocks = [text for lang, text in code_blocks(GUIDE.read_text()) if lang == "python"]
    files = sample_files(GUIDE.read_text())
    assert len(blocks) >= 5
    assert all(text in files.values() for text in blocks), "a python block without a '# path' first line"
    assert {"pyproject.toml", "config.yaml", FAKE_TESTS, "tests/test_greeting_cluster.py"} <= set(files)


def test_the_entry_points_name_the_decorated_factories(guide_entry_points: dict[str, list[EntryPoint]]):
    assert set(guide_entry_points) == {plugins.RECONCILERS_GROUP, plugins.HANDLERS_GROUP}
    for group, eps in guide_entry_points.items():
        for ep in eps:
            spec = ep.load().__informerd_plugin__
            assert spec.kind == ("reconciler" if group == plugins.RECONCILERS_GROUP else "handler")
    assert {p.name for p in plugins.discover()} == {"greeting", "greeting-audit"}


def _fake_cluster_tests(guide: dict[str, ModuleType]) -> list[tuple[str, Any]]:
    module = guide[FAKE_TESTS]
    return [
        (name, fn) for name, fn in vars(module).items() if name.startswith("test_") and inspect.iscoroutinefunction(fn)
    ]


def test_the_guide_has_fake_cluster_tests(guide: dict[str, ModuleType]):
    assert len(_fake_cluster_tests(guide)) == 3


@pytest.mark.anyio
async def test_the_guides_fake_cluster_tests_pass(guide: dict[str, ModuleType]):
    for _, test in _fake_cluster_tests(guide):
        await test()


@pytest.mark.anyio
async def test_the_guides_config_runs_the_daemon_with_its_plugins(
    guide_entry_points: Any, guide: dict[str, ModuleType]
):
    config = parse_config(sample_files(GUIDE.read_text())["config.yaml"], "config.yaml")
    fake = guide[FAKE_TESTS]
    cluster = fake.fake_cluster()
    manager = manager_from_config(
        config.model_copy(update={"metrics_bind_address": "0", "health_probe_bind_address": "0"}), client=cluster
    )
    uid = cluster.create(fake.GREETINGS, fake.new_greeting("daemon", "Daemon"), namespace="greetings")["metadata"][
        "uid"
    ]
    async with anyio.create_task_group() as group:
        group.start_soon(manager.serve)
        await wait_until_async(lambda: fake.observed(cluster, "daemon") == 1, timeout=10)
        assert fake.cards(cluster, uid) == [f"greeting-{uid}-1"]
        successes = manager.controllers[0].statistics().workers.success_total
        # The watches mapper: a Secret annotated with the Greeting's UID enqueues it again.
        secret = {"metadata": {"name": "s", "annotations": {"greetings.example.com/for": uid}}, "data": {}}
        cluster.create("v1/secrets", secret, namespace="greetings")
        await wait_until_async(
            lambda: manager.controllers[0].statistics().workers.success_total > successes, timeout=10
        )
        group.cancel_scope.cancel()
    assert fake.cards(cluster, uid) == [f"greeting-{uid}-1"]


def test_a_binding_that_grants_less_than_the_plugin_declares_stops_start_up(guide_entry_points: Any):
    text = sample_files(GUIDE.read_text())["config.yaml"].replace("      v1/configmaps: [create, delete]\n", "")
    with pytest.raises(PluginError, match="needs permissions the config does not grant: v1/configmaps: create, delete"):
        manager_from_config(parse_config(text), client=object())


def test_unknown_plugin_options_are_rejected(guide_entry_points: Any):
    text = sample_files(GUIDE.read_text())["config.yaml"].replace("salutation: Hello", "salutaton: Hello")
    with pytest.raises(PluginError, match="options.salutaton"):
        manager_from_config(parse_config(text), client=object())
