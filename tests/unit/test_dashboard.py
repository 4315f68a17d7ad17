"""The chart's Grafana dashboard, statically: it covers the standard metrics, every query is scoped
by the templated datasource, namespace and pod, and the layout is one Grafana can load (unique
ids, panels inside the 24-column grid, no overlaps). Its metric names are checked against a live
scrape in tests/integration/test_dashboard_metrics.py."""

from __future__ import annotations

from tests.monitoring import dashboard, dashboard_queries, panels


def test_dashboard_covers_the_standard_metrics() -> None:
    named = set().union(*(refs.metrics for refs in dashboard_queries().values()))
    for metric in (
        "controller_runtime_reconcile_total",  # reconcile rate
        "controller_runtime_reconcile_errors_total",  # errors
        "controller_runtime_reconcile_time_seconds_bucket",  # latency
        "workqueue_depth",
        "workqueue_queue_duration_seconds_bucket",
        "workqueue_retries_total",
        "informerd_informer_watch_restarts_total",
        "informerd_informer_relists_total",
        "informerd_informer_cached_objects",
        "rest_client_requests_total",
        "rest_client_request_duration_seconds_bucket",
        "informerd_client_throttle_seconds_total",
        "leader_election_master_status",
    ):
        assert metric in named, metric


def test_every_query_is_scoped_by_the_templated_variables() -> None:
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert {"namespace", "pod"} <= variables.keys()
    for name in ("namespace", "pod", "controller"):
        assert variables[name]["datasource"]["uid"] == "${datasource}"
    targets = 0
    for panel in panels():
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            targets += 1
            assert target["datasource"]["uid"] == "${datasource}"
            assert 'namespace="$namespace"' in target["expr"] and 'pod=~"$pod"' in target["expr"], target["expr"]
    assert targets >= 40


def test_layout_has_unique_ids_and_no_overlapping_panels() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
    all_panels = list(panels())
    ids = [p["id"] for p in all_panels]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in all_panels:
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]
        refs = [t["refId"] for t in panel.get("targets", [])]
        assert len(refs) == len(set(refs)), panel["title"]
