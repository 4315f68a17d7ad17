"""The metric and label names a PromQL expression (or a Grafana query using template variables)
refers to, and the names a Prometheus text exposition declares; for checking that a dashboard or an
alert queries only what the daemon exports.

Not a PromQL parser: it removes what cannot be a metric name (string literals, durations in ``[...]``,
label matchers in ``{...}``, grouping clauses, numbers) and keeps the identifiers that are neither
keywords nor called as functions or aggregations. Label names come from the matchers and the
grouping clauses it removed.
"""

from __future__ import annotations

import dataclasses
import re

__all__ = ["Refs", "declared_names", "grafana_variable_refs", "promql_refs"]

_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "bool",
        "atan2",
        "inf",
        "nan",
        "start",
        "end",
    }
)
_IDENT = re.compile(r"(?<![\w.:])[A-Za-z_:][\w:]*")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_MATCHERS = re.compile(r"\{([^{}]*)\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_MATCHER_LABEL = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)")
_GRAFANA_VAR = re.compile(r"\$\{[^}]*\}|\$__\w+|\$\w+|\[\[\w+\]\]")
_TYPE_LINE = re.compile(r"^# TYPE (\S+) (\S+)$", re.M)
_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("", "_sum", "_count")}


@dataclasses.dataclass(frozen=True)
class Refs:
    """What one expression refers to: metric names and label names."""

    metrics: frozenset[str]
    labels: frozenset[str]


def _without_grafana_variables(expr: str) -> str:
    # A variable stands for a value (in matchers or ranges), never for a name: any token will do.
    return _GRAFANA_VAR.sub("1m", expr)


def promql_refs(expr: str) -> Refs:
    """Metric and label names referred to by a PromQL expression (Grafana variables allowed)."""
    text = _STRING.sub('""', _without_grafana_variables(expr))
    labels: set[str] = set()
    for match in _GROUPING.finditer(text):
        labels.update(name.strip() for name in match.group(2).split(",") if name.strip())
    text = _GROUPING.sub(" ", text)
    for match in _MATCHERS.finditer(text):
        labels.update(_MATCHER_LABEL.findall(match.group(1)))
    text = _RANGE.sub(" ", _MATCHERS.sub(" ", text))
    metrics: set[str] = set()
    for match in _IDENT.finditer(text):
        name = match.group(0)
        if name.lower() in _KEYWORDS or re.match(r"\s*\(", text[match.end() :]):
            continue  # a keyword, or a function/aggregation being called
        metrics.add(name)
    labels.discard("__name__")
    return Refs(frozenset(metrics), frozenset(labels))


def grafana_variable_refs(query: str) -> Refs:
    """What a Grafana Prometheus variable query refers to: ``label_values(expr, label)``,
    ``label_values(label)``, ``metrics(regex)`` or ``query_result(expr)``; anything else is PromQL."""
    query = query.strip()
    m = re.fullmatch(r"label_values\((.*),\s*([A-Za-z_]\w*)\s*\)", query, re.S)
    if m:
        inner = promql_refs(m.group(1))
        return Refs(inner.metrics, inner.labels | {m.group(2)})
    m = re.fullmatch(r"label_values\(\s*([A-Za-z_]\w*)\s*\)", query)
    if m:
        return Refs(frozenset(), frozenset({m.group(1)}))
    m = re.fullmatch(r"query_result\((.*)\)", query, re.S)
    if m:
        return promql_refs(m.group(1))
    if re.fullmatch(r"metrics\(.*\)", query, re.S):
        return Refs(frozenset(), frozenset())
    return promql_refs(query)


def declared_names(exposition: str) -> dict[str, str]:
    """Every series name a text exposition declares (``# TYPE`` lines), histograms and summaries
    expanded to their ``_bucket``/``_sum``/``_count`` series, mapped to the family's type."""
    names: dict[str, str] = {}
    for family, kind in _TYPE_LINE.findall(exposition):
        for suffix in _SUFFIXES.get(kind, ("",)):
            names[family + suffix] = kind
    return names
