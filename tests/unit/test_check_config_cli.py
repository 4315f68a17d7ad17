"""``informerd check-config`` on broken files prints each problem with its path and line and exits 2;
``informerd config-schema`` prints a valid JSON Schema (checked with the ``jsonschema`` package)
that accepts the example configs and rejects what it can express of the broken ones.

The commands run as subprocesses: ``check-config`` configures the process's logging, which must not
leak into the other tests."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import jsonschema
import orjson
import pytest
import yaml

from controllers.config import ConfigFileError, parse_config

EXAMPLES = {
    "minimal": "{}\n",
    "handlers-only": """\
        namespace: team-a
        handlers:
          - plugin: event-logger
            resource: v1/events
            fieldSelector: type=Warning
            resyncPeriod: 300
        """,
    "full": """\
        name: backup-controller
        namespace: backups
        metricsBindAddress: ":8080"
        healthProbeBindAddress: ":8081"
        drainTimeout: 45
        client: {qps: 20, burst: 40, connectTimeout: 5, readTimeout: 30, maxRetries: 3}
        informers: {streamingList: false, pageSize: 250, resyncPeriod: 600, idleTimeout: 120}
        leaderElection:
          enabled: true
          id: backup-controller-leader
          namespace: backups
          leaseDuration: 15
          renewDeadline: 10
          retryPeriod: 2
        reconcilers:
          - plugin: backup
            name: backups
            resource: example.com/v1/Backup
            labelSelector: tier=gold
            owns: [batch/v1/jobs]
            watches:
              - {resource: v1/secrets, mapper: by-annotation, labelSelector: backup=yes}
            predicates: [generation_changed, labels_changed]
            workers: 4
            timeout: 30
            cacheSyncTimeout: 60
            rateLimiter: {baseDelay: 0.01, maxDelay: 300, qps: 20, burst: 50, maxWait: 600}
            options: {recordNamespace: backup-records}
            permissions:
              batch/v1/jobs: [create, delete]
              v1/configmaps: [create, delete]
        handlers:
          - plugin: event-logger
            resource: example.com/v1/Backup
        """,
}

# name -> (file, [(path, line, what the message says)], whether the JSON Schema can see it)
BROKEN = {
    "unknown key": (
        """\
        name: x
        metricsBindAdress: ":9090"
        """,
        [("metricsBindAdress", 2, "Extra inputs are not permitted")],
        True,
    ),
    "unknown nested key": (
        """\
        reconcilers:
          - plugin: backup
            resource: example.com/v1/Backup
            rateLimiter:
              basedelay: 1
        """,
        [("reconcilers.0.rateLimiter.basedelay", 5, "Extra inputs are not permitted")],
        True,
    ),
    "wrong type": (
        """\
        reconcilers:
          - plugin: backup
            resource: example.com/v1/Backup
            workers: many
        """,
        [("reconcilers.0.workers", 4, "Input should be a valid integer")],
        True,
    ),
    "out of range": (
        """\
        client:
          burst: 0
        drainTimeout: -1
        """,
        [("client.burst", 2, "greater than or equal to 1"), ("drainTimeout", 3, "greater than 0")],
        True,
    ),
    "bad leaderElection ordering": (
        """\
        leaderElection:
          enabled: true
          leaseDuration: 10
          renewDeadline: 15
        """,
        [("leaderElection", 1, "need leaseDuration > renewDeadline > 1.2 x retryPeriod")],
        False,
    ),
    "duplicate controller names": (
        """\
        reconcilers:
          - {plugin: a, resource: v1/configmaps}
          - {plugin: b, resource: v1/configmaps}
          - {plugin: c, name: twice, resource: v1/secrets}
          - {plugin: d, name: twice, resource: v1/services}
        """,
        [("", 1, "reconciler names must be unique (set 'name'); repeated: configmaps, twice")],
        False,
    ),
    "unknown predicate": (
        """\
        reconcilers:
          - plugin: backup
            resource: example.com/v1/Backup
            predicates:
              - generation_changed
              - generation_chnged
        """,
        [("reconcilers.0.predicates.1", 6, "Input should be 'annotations_changed', 'generation_changed'")],
        True,
    ),
    "missing required": (
        """\
        handlers:
          - resource: v1/events
        """,
        [("handlers.0.plugin", 2, "Field required")],
        True,
    ),
    "several at once": (
        """\
        name: ""
        client: {qps: fast}
        reconcilers:
          - plugin: backup
            resource: example.com/v1/Backup
            workers: 0
            watches:
              - {resource: v1/secrets}
        """,
        [
            ("name", 1, "at least 1 character"),
            ("client.qps", 2, "Input should be a valid number"),
            ("reconcilers.0.workers", 6, "greater than or equal to 1"),
            ("reconcilers.0.watches.0.mapper", 8, "Field required"),
        ],
        True,
    ),
}

BAD_YAML = {
    "unclosed flow sequence": ("reconcilers: [\n  - plugin: x\n", "not valid YAML"),
    "tab indentation": ("client:\n\tqps: 1\n", "not valid YAML"),
    "not a mapping": ("- a\n- b\n", "the file must be a mapping"),
}


def informerd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controllers.cli", *args], capture_output=True, text=True, timeout=120, check=False
    )


def _parent(path: str) -> str:
    return path.rsplit(".", 1)[0] if "." in path else ""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / (name.replace(" ", "-") + ".yaml")
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture(scope="module")
def schema() -> dict[str, object]:
    out = informerd("config-schema")
    assert out.returncode == 0, out.stderr
    loaded: dict[str, object] = orjson.loads(out.stdout)
    return loaded


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_check_config_prints_each_problem_with_its_path_and_line(tmp_path: Path, name: str) -> None:
    text, expected, _ = BROKEN[name]
    path = write(tmp_path, name, text)
    out = informerd("check-config", "--config", str(path))
    assert out.returncode == 2, out
    assert out.stdout == ""
    report = out.stderr.splitlines()
    assert report[0] == f"informerd: {path}: {len(expected)} problem(s):"
    problems = report[1 : 1 + len(expected)]
    for where, line, says in expected:
        printed = [p for p in problems if p.startswith(f"  {where or '<root>'} (line {line}): ")]
        assert len(printed) == 1, (where, line, problems)
        assert says in printed[0], printed
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("name", sorted(BAD_YAML))
def test_check_config_on_a_file_that_is_not_a_yaml_mapping(tmp_path: Path, name: str) -> None:
    text, says = BAD_YAML[name]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    out = informerd("check-config", "--config", str(path))
    assert out.returncode == 2
    assert f"informerd: {path}: 1 problem(s):" in out.stderr
    assert says in out.stderr and "(line " in out.stderr
    assert "Traceback" not in out.stderr


def test_check_config_on_a_missing_file(tmp_path: Path) -> None:
    out = informerd("check-config", "--config", str(tmp_path / "absent.yaml"))
    assert out.returncode == 2 and "cannot read" in out.stderr


def test_the_schema_is_valid_json_schema(schema: dict[str, object]) -> None:
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_the_schema_and_the_model_accept_the_examples(schema: dict[str, object], name: str) -> None:
    text = textwrap.dedent(EXAMPLES[name])
    jsonschema.validate(yaml.safe_load(text), schema, cls=jsonschema.Draft202012Validator)
    parse_config(text)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_the_schema_rejects_what_it_can_express_and_the_model_rejects_everything(
    schema: dict[str, object], name: str
) -> None:
    text, expected, schema_sees_it = BROKEN[name]
    data = yaml.safe_load(textwrap.dedent(text))
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(data))
    if schema_sees_it:
        # The schema reports the same places as the model (its paths use the same YAML keys).
        schema_paths = {".".join(str(p) for p in e.absolute_path) for e in errors}
        model_paths = {where for where, _, _ in expected}
        assert errors and all(p in schema_paths or _parent(p) in schema_paths for p in model_paths), schema_paths
    else:
        # Cross-field rules (ordering, uniqueness) are beyond JSON Schema: only the model sees them.
        assert errors == []
    with pytest.raises(ConfigFileError):
        parse_config(textwrap.dedent(text))
