"""The daemon's config file and plugins: every problem reported with its path and line, the JSON
Schema generated from the same model, plugins found through real entry points (a distribution
written to a temporary directory), their options validated by their own models, and failures
naming the entry point and its distribution."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from controllers.config import ConfigFileError, DaemonConfig, config_schema, load_config_file, parse_config
from controllers.daemon import manager_from_config, rate_limiter
from controllers.plugins import HANDLERS_GROUP, RECONCILERS_GROUP, PluginConfigError, PluginError, discover, load_plugin
from controllers.ratelimit import MaxWaitRateLimiter
from informers.informer import InformerOptions

PLUGIN_MODULE = """
from pydantic import BaseModel
from controllers.plugins import handler_plugin, reconciler_plugin

class Options(BaseModel):
    model_config = {"extra": "forbid"}
    record_namespace: str = "backups"
    copies: int = 1

def by_annotation(obj):
    return [obj["metadata"]["annotations"]["owner-uid"]]

@reconciler_plugin(options=Options, mappers={"by-annotation": by_annotation},
                   permissions={"batch/v1/jobs": ["create", "delete"], "v1/configmaps": ["create"]})
def backup(options):
    async def reconcile(ctx):
        return None
    reconcile.options = options
    return reconcile

@handler_plugin()
def logger(options):
    return lambda note: None

@reconciler_plugin()
def explodes(options):
    raise RuntimeError("cannot start")

def unmarked(options):
    return lambda ctx: None
"""


@pytest.fixture
def plugins(tmp_path: Path) -> Iterator[Path]:
    """A distribution 'fakeplugins 1.2' declaring entry points, importable from ``tmp_path`` (its
    reconciler is 'fake-backup': 'backup' is the example package's, installed in the venv)."""
    (tmp_path / "fakeplugins.py").write_text(PLUGIN_MODULE)
    (tmp_path / "broken_plugin.py").write_text("raise ImportError('missing dependency: boto3')\n")
    info = tmp_path / "fakeplugins-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplugins\nVersion: 1.2\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(f"""\
        [{RECONCILERS_GROUP}]
        fake-backup = fakeplugins:backup
        explodes = fakeplugins:explodes
        unmarked = fakeplugins:unmarked
        broken = broken_plugin:factory
        [{HANDLERS_GROUP}]
        logger = fakeplugins:logger
        """)
    )
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for name in ("fakeplugins", "broken_plugin"):
            sys.modules.pop(name, None)


# -- the file ----------------------------------------------------------------------------------


def test_an_empty_file_is_the_defaults():
    config = parse_config("")
    assert config == DaemonConfig()
    assert config.metrics_bind_address == ":8080" and config.health_probe_bind_address == ":8081"


def test_liveness_timings_default_to_client_gos_and_reach_the_manager():
    defaults = manager_from_config(parse_config(""), client=object())
    assert defaults._informer_options is not None
    assert defaults._informer_options.backoff_cap == InformerOptions().backoff_cap == 30.0
    assert defaults.stall_grace == 30.0
    config = parse_config("informers: {idleTimeout: 5, maxBackoff: 2}\nhealth: {stallGrace: 5}\n")
    manager = manager_from_config(config, client=object())
    assert manager._informer_options is not None
    assert (manager._informer_options.idle_timeout, manager._informer_options.backoff_cap) == (5, 2)
    assert manager.stall_grace == 5
    with pytest.raises(ConfigFileError) as info:
        parse_config("informers: {maxBackoff: 0.5}\nhealth: {stallGrace: -1}\n")
    assert [(p.path, p.line) for p in info.value.problems] == [("informers.maxBackoff", 1), ("health.stallGrace", 2)]


def test_store_compression_reaches_the_informer_options_and_a_missing_extra_is_a_config_problem(
    monkeypatch: pytest.MonkeyPatch,
):
    assert manager_from_config(parse_config(""), client=object())._informer_options.store_compression is None  # type: ignore[union-attr]
    config = parse_config("informers: {storeCompression: zstd}\n")
    manager = manager_from_config(config, client=object())
    assert manager._informer_options is not None and manager._informer_options.store_compression == "zstd"
    with pytest.raises(ConfigFileError) as info:
        parse_config("informers: {storeCompression: lz4}\n")
    assert [p.path for p in info.value.problems] == ["informers.storeCompression"]
    monkeypatch.setitem(sys.modules, "zstandard", None)  # installed without the 'compressed' extra
    with pytest.raises(PluginConfigError) as missing:
        manager_from_config(config, client=object())
    assert [p.path for p in missing.value.problems] == ["informers.storeCompression"]
    assert "informerd[compressed]" in missing.value.problems[0].message


def test_every_problem_is_reported_with_its_path_and_line(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        textwrap.dedent("""\
        name: x
        client:
          bogus: 1
        reconcilers:
          - plugin: fake-backup
            resource: example.com/v1/Backup
            workers: 0
            predicates: [nope]
            rateLimiter:
              qps: -1
        leaderElection:
          leaseDuration: 5
        """)
    )
    with pytest.raises(ConfigFileError) as info:
        load_config_file(path)
    problems = {(p.path, p.line) for p in info.value.problems}
    assert problems == {
        ("client.bogus", 3),
        ("reconcilers.0.workers", 7),
        ("reconcilers.0.predicates.0", 8),
        ("reconcilers.0.rateLimiter.qps", 10),
        ("leaderElection", 11),
    }
    assert str(path) in str(info.value) and "Extra inputs are not permitted" in str(info.value)


@pytest.mark.parametrize(
    "text, where",
    [
        ("reconcilers: [\n", None),  # not YAML
        ("- a\n- b\n", ""),  # not a mapping
    ],
)
def test_unreadable_files_are_one_clear_problem(text: str, where: str | None):
    with pytest.raises(ConfigFileError) as info:
        parse_config(text)
    assert len(info.value.problems) == 1
    if where is not None:
        assert info.value.problems[0].path == where


def test_controller_names_must_be_unique():
    with pytest.raises(ConfigFileError, match="repeated: backup"):
        parse_config(
            "reconcilers:\n- {plugin: a, resource: example.com/v1/Backup}\n"
            "- {plugin: b, resource: other.com/v1/Backup}\n"
        )


def test_the_schema_comes_from_the_model_and_documents_every_option():
    schema = config_schema()
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert {"reconcilers", "handlers", "client", "leaderElection", "metricsBindAddress"} <= set(props)
    binding = schema["$defs"]["ReconcilerBinding"]
    assert binding["additionalProperties"] is False
    undocumented = [
        (name, key)
        for name, model in schema["$defs"].items()
        for key, prop in model.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert undocumented == []
    json.dumps(schema)  # serialisable as is


def test_rate_limiter_settings_build_the_controller_limiter():
    config = parse_config("reconcilers:\n- {plugin: a, resource: v1/ConfigMap, rateLimiter: {maxWait: 30}}\n")
    limiter = rate_limiter(config.reconcilers[0].rate_limiter)
    assert isinstance(limiter, MaxWaitRateLimiter)
    assert limiter.when("k") == pytest.approx(0.005)


# -- plugins -----------------------------------------------------------------------------------


def test_discover_lists_plugins_with_their_distribution(plugins: Path):
    found = {(p.group, p.name): p for p in discover()}
    backup = found[(RECONCILERS_GROUP, "fake-backup")]
    assert (backup.distribution, backup.version, backup.value) == ("fakeplugins", "1.2", "fakeplugins:backup")
    assert (HANDLERS_GROUP, "logger") in found


def test_options_are_validated_by_the_plugins_model(plugins: Path):
    loaded = load_plugin(RECONCILERS_GROUP, "fake-backup", {"record_namespace": "vault", "copies": 2})
    assert loaded.target.options.copies == 2  # type: ignore[attr-defined]
    assert "by-annotation" in loaded.mappers
    with pytest.raises(PluginError) as info:
        load_plugin(RECONCILERS_GROUP, "fake-backup", {"copies": "many", "colour": "red"})
    message = str(info.value)
    assert "'fake-backup'" in message and "fakeplugins 1.2" in message
    assert "options.copies" in message and "options.colour" in message
    with pytest.raises(PluginError, match="takes no options"):
        load_plugin(HANDLERS_GROUP, "logger", {"x": 1})


@pytest.mark.parametrize(
    "name, why",
    [
        ("broken", "cannot import .*missing dependency: boto3"),
        ("explodes", "failed to start: RuntimeError: cannot start"),
        ("unmarked", "is not marked with @reconciler_plugin"),
        ("absent", "no informerd.reconcilers plugin named 'absent'"),
    ],
)
def test_plugin_failures_name_the_entry_point_and_its_distribution(plugins: Path, name: str, why: str):
    with pytest.raises(PluginError, match=why) as info:
        load_plugin(RECONCILERS_GROUP, name, {})
    if name != "absent":
        assert "fakeplugins 1.2" in str(info.value)


def test_a_config_becomes_a_manager_with_every_plugin_registered(plugins: Path):
    config = parse_config(
        textwrap.dedent("""\
        name: backups.example.com
        reconcilers:
          - plugin: fake-backup
            resource: example.com/v1/Backup
            permissions: {batch/v1/jobs: [create, delete], v1/configmaps: [create]}
            owns: [batch/v1/Job]
            watches: [{resource: v1/Secret, mapper: by-annotation}]
            predicates: [generation_changed]
            workers: 3
            options: {copies: 2}
        handlers:
          - plugin: logger
            resource: v1/ConfigMap
        """)
    )
    manager = manager_from_config(config, client=object())
    assert manager.name == "backups.example.com"
    [registration] = manager._registrations
    assert registration.resource == "example.com/v1/Backup"
    assert [str(t) for t in registration.triggers] == ["owns(batch/v1/Job)", "watches(v1/Secret)"]
    assert registration.options["max_concurrent_reconciles"] == 3
    assert len(manager._handlers) == 1
    bad = parse_config(
        "reconcilers:\n- {plugin: fake-backup, resource: v1/ConfigMap, watches: [{resource: v1/Secret, mapper: nope}],"
        " permissions: {batch/v1/jobs: [create, delete], v1/configmaps: [create]}}\n"
    )
    with pytest.raises(PluginError, match="has no mapper 'nope'.*by-annotation"):
        manager_from_config(bad, client=object())


def test_a_binding_must_grant_the_permissions_its_plugin_declares(plugins: Path):
    with pytest.raises(PluginError) as info:
        load_plugin(RECONCILERS_GROUP, "fake-backup", {}, {"batch/v1/jobs": ["create"]})
    message = str(info.value)
    assert "batch/v1/jobs: delete" in message and "v1/configmaps: create" in message
    granted = {"batch/v1/jobs": ["create", "delete", "get"], "v1/configmaps": ["create"]}
    loaded = load_plugin(RECONCILERS_GROUP, "fake-backup", {}, granted)
    assert loaded.permissions == {"batch/v1/jobs": ("create", "delete"), "v1/configmaps": ("create",)}
    config = parse_config("reconcilers:\n- {plugin: fake-backup, resource: v1/ConfigMap}\n")
    with pytest.raises(PluginError, match="needs permissions the config does not grant"):
        manager_from_config(config, client=object())


def test_every_binding_whose_plugin_fails_is_reported_at_once_with_its_config_path(plugins: Path):
    config = parse_config(
        textwrap.dedent("""\
        reconcilers:
          - {plugin: broken, name: a, resource: v1/ConfigMap}
          - {plugin: fake-backup, name: b, resource: v1/ConfigMap,
             permissions: {batch/v1/jobs: [create, delete], v1/configmaps: [create]}}
          - {plugin: explodes, name: c, resource: v1/ConfigMap}
          - {plugin: unmarked, name: d, resource: v1/ConfigMap}
        handlers:
          - {plugin: nothing-here, resource: v1/ConfigMap}
          - {plugin: logger, resource: v1/ConfigMap, options: {verbose: true}}
        """)
    )
    with pytest.raises(PluginConfigError) as info:
        manager_from_config(config, client=object())
    problems = {p.path: p.message for p in info.value.problems}
    assert sorted(problems) == [
        "handlers.0.plugin",
        "handlers.1.plugin",
        "reconcilers.0.plugin",
        "reconcilers.2.plugin",
        "reconcilers.3.plugin",
    ]
    assert "cannot import" in problems["reconcilers.0.plugin"] and "fakeplugins 1.2" in problems["reconcilers.0.plugin"]
    assert "failed to start" in problems["reconcilers.2.plugin"]
    assert "not marked" in problems["reconcilers.3.plugin"]
    assert "no informerd.handlers plugin named 'nothing-here'" in problems["handlers.0.plugin"]
    assert "takes no options" in problems["handlers.1.plugin"]
    assert "5 plugin problem(s)" in str(info.value)
    assert isinstance(info.value, PluginError)  # callers catching the base class still catch it
