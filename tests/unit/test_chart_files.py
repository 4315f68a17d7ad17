"""The chart's generated and version-tied files are current: appVersion is the package version, the
values schema embeds today's daemon config schema, the README table matches values.yaml's comments."""

from __future__ import annotations

import configparser
import json
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from controllers.config import DaemonConfig, config_schema
from tools import chartgen

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "informerd"


def test_app_version_is_the_package_version():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == setup["metadata"]["version"] == version("informerd")


def test_values_schema_is_generated_and_current():
    on_disk = json.loads((CHART / "values.schema.json").read_text())
    assert (CHART / "values.schema.json").read_text() == chartgen.schema_text(), "run python -m tools.chartgen"
    daemon = config_schema()
    embedded = dict(on_disk["$defs"]["DaemonConfig"])
    for key in ("$schema", "title", "$defs"):
        daemon.pop(key, None)
    assert embedded == daemon  # the daemon's own schema, unchanged
    for name, definition in config_schema().get("$defs", {}).items():
        assert on_disk["$defs"][name] == definition
    assert {"$ref": "#/$defs/DaemonConfig"} in on_disk["properties"]["config"]["allOf"]


def test_check_mode_reports_a_stale_file(tmp_path, monkeypatch, capsys):
    for name in ("values.yaml", "README.md", "values.schema.json"):
        (tmp_path / name).write_text((CHART / name).read_text())
    monkeypatch.setattr(chartgen, "CHART_DIR", tmp_path)
    assert chartgen.main(["--check"]) == 0
    (tmp_path / "values.yaml").write_text((CHART / "values.yaml").read_text() + "\n# -- A new value.\nnewValue: 3\n")
    assert chartgen.main(["--check"]) == 1
    assert "README.md is stale" in capsys.readouterr().err


def test_readme_values_table_is_current():
    readme = (CHART / "README.md").read_text()
    assert readme == chartgen.readme_text(readme, (CHART / "values.yaml").read_text()), "run python -m tools.chartgen"
    assert "| `replicaCount` | int | `1` |" in readme


def test_every_value_is_documented():
    docs = {d.path: d for d in chartgen.value_docs((CHART / "values.yaml").read_text())}
    assert docs["config"].description.startswith("The daemon's config file")
    assert docs["metrics.serviceMonitor.enabled"].default is False
    assert "image" not in docs and "image.tag" in docs  # groups are not rows; their keys are


def test_an_undocumented_value_is_an_error():
    with pytest.raises(ValueError, match="without a '# --' comment: extra.size"):
        chartgen.value_docs("# -- Documented.\nkept: 1\nextra:\n  size: 2\n")
    docs = chartgen.value_docs("group:\n  # -- Two lines\n  # of text.\n  leaf:\n    inner: 1\n")
    assert [(d.path, d.description, d.default) for d in docs] == [("group.leaf", "Two lines of text.", {"inner": 1})]


def test_default_config_is_a_valid_daemon_config():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    config = DaemonConfig.model_validate(values["config"])
    assert [r.plugin for r in config.reconcilers] == ["backup"]


def test_default_config_is_the_example_backup_controller_config():
    """The chart sets the bind addresses itself (flags from its ports); everything else is the example's."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    example = yaml.safe_load((ROOT / "examples" / "backup-controller" / "config.yaml").read_text())
    for managed in ("metricsBindAddress", "healthProbeBindAddress"):
        example.pop(managed)
    assert values["config"] == example
    assert values["rbac"]["permissionNamespaces"] == {
        "v1/configmaps": [example["reconcilers"][0]["options"]["recordNamespace"]]
    }
