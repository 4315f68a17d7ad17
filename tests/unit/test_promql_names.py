"""The PromQL name extraction the dashboard and alert checks rely on (tests/promql_names.py)."""

from __future__ import annotations

import pytest

from tests.promql_names import declared_names, grafana_variable_refs, promql_refs


@pytest.mark.parametrize(
    ("expr", "metrics", "labels"),
    [
        ("up", {"up"}, set()),
        (
            'sum by (controller, result) (rate(controller_runtime_reconcile_total{namespace="$namespace", '
            'pod=~"$pod"}[$__rate_interval]))',
            {"controller_runtime_reconcile_total"},
            {"controller", "result", "namespace", "pod"},
        ),
        (
            "histogram_quantile(0.99, sum by (name, le) (rate(workqueue_queue_duration_seconds_bucket[5m]))) > 10",
            {"workqueue_queue_duration_seconds_bucket"},
            {"name", "le"},
        ),
        (
            "sum(rate(a_total[5m])) without (pod) / on (namespace) group_left (team) b_info offset 1h",
            {"a_total", "b_info"},
            {"pod", "namespace", "team"},
        ),
        (
            # label values and strings that look like metric names are not metrics
            'x{job="rate_total", state!="closed"} > bool y{k=~"sum(z)"} unless 1e3 * z_count',
            {"x", "y", "z_count"},
            {"job", "state", "k"},
        ),
        ("max_over_time(m[1h:5m]) - 2 ^ 30", {"m"}, set()),
        ("sum (rate(spaced_total [5m]))", {"spaced_total"}, set()),
        ('label_replace(v, "dst", "$1", "src", "(.*)")', {"v"}, set()),
        ("vector(1) > Inf or NaN", set(), set()),
    ],
)
def test_promql_refs(expr: str, metrics: set[str], labels: set[str]) -> None:
    refs = promql_refs(expr)
    assert refs.metrics == metrics
    assert refs.labels == labels


def test_grafana_variable_queries() -> None:
    refs = grafana_variable_refs('label_values(informerd_client_in_flight_requests{namespace="$namespace"}, pod)')
    assert refs.metrics == {"informerd_client_in_flight_requests"} and refs.labels == {"namespace", "pod"}
    assert grafana_variable_refs("label_values(namespace)").labels == {"namespace"}
    assert grafana_variable_refs("query_result(count by (x) (y))").metrics == {"y"}


def test_declared_names_expand_histograms_and_summaries() -> None:
    text = (
        "# HELP a_total A.\n# TYPE a_total counter\na_total 1.0\n"
        '# TYPE h_seconds histogram\nh_seconds_bucket{le="+Inf"} 1.0\n'
        "# TYPE s summary\n# TYPE g gauge\n"
    )
    assert declared_names(text) == {
        "a_total": "counter",
        "h_seconds_bucket": "histogram",
        "h_seconds_sum": "histogram",
        "h_seconds_count": "histogram",
        "s": "summary",
        "s_sum": "summary",
        "s_count": "summary",
        "g": "gauge",
    }
