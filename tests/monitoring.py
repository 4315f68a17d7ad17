"""The chart's Grafana dashboard and alert rules, read for the tests, with the names each query uses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.promql_names import Refs, grafana_variable_refs, promql_refs

__all__ = ["DASHBOARD", "RULES", "alert_queries", "alert_rules", "dashboard", "dashboard_queries", "panels"]

CHART = Path(__file__).resolve().parents[1] / "charts" / "informerd"
DASHBOARD = CHART / "dashboards" / "informerd.json"
RULES = CHART / "alerts" / "rules.yaml"


def dashboard() -> dict[str, Any]:
    board: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return board


def panels(items: list[dict[str, Any]] | None = None) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    for panel in dashboard()["panels"] if items is None else items:
        yield panel
        yield from panels(panel.get("panels", []))


def dashboard_queries() -> dict[str, Refs]:
    """``where -> names`` for every panel target and every query variable."""
    out: dict[str, Refs] = {}
    for panel in panels():
        for target in panel.get("targets", []):
            out[f"panel {panel['title']!r} {target['refId']}: {target['expr']}"] = promql_refs(target["expr"])
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
            out[f"variable {variable['name']}: {query}"] = grafana_variable_refs(query)
    return out


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def alert_queries() -> dict[str, Refs]:
    return {f"alert {rule['alert']}: {rule['expr']}": promql_refs(rule["expr"]) for rule in alert_rules()}
