"""The Prometheus exporter over real statistics records: every family's name, type and label set,
controller-runtime's zero-initialised series and exact buckets, values read at scrape time, bounded
label values, the hooks (reconcile, work queue, REST client) and a private registry."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from controllers.circuit import CircuitOptions
from controllers.controller import Controller
from controllers.errors import TerminalError
from controllers.metrics import LABEL_LIMIT, MetricsExporter
from controllers.observers import RECONCILE_TIME_BUCKETS, REST_CLIENT_DURATION_BUCKETS, WORKQUEUE_DURATION_BUCKETS
from controllers.recorder import EventRecorder
from controllers.request import Request
from controllers.result import Result
from controllers.writer import ApiWriter, WriterOptions
from informers.client import ApiClient
from informers.clock import FakeClock
from informers.config import ClientConfig
from informers.informer import InformerOptions, SharedInformer
from informers.resources import Resource

from ._local_http import LocalServer

PODS = Resource("", "v1", "pods", "Pod", True)
WIDGETS = Resource("example.com", "v1", "widgets", "Widget", True)
HUGE_SELECTOR = ",".join(f"app.kubernetes.io/part-{i} in (alpha,beta,gamma)" for i in range(200))


def _pod(name: str, rv: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": rv},
    }


def make_informer(clock: FakeClock, *, label_selector: str | None = None) -> SharedInformer:
    """A real informer fed one list page and one watch event through its watcher (no server)."""
    informer = SharedInformer(
        object(),
        PODS,
        namespace="default",
        label_selector=label_selector,  # type: ignore[arg-type]
        options=InformerOptions(streaming_list=False),
        clock=clock,
    )
    informer.add_handler(on_add=lambda obj: None, name="h" * 300)  # buffered, never run: pending
    watcher = informer.watcher
    watcher.next_request()
    informer._apply(
        watcher.on_list_page({"metadata": {"resourceVersion": "10"}, "items": [_pod("a", "5"), _pod("b", "6")]})
    )
    watcher.on_applied()
    watcher.next_request()
    informer._apply(watcher.on_watch_event({"type": "MODIFIED", "object": _pod("a", "11")}))
    watcher.on_applied()
    return informer


class _Primary:
    """What a controller's worker resolves keys from: the primary informer's store."""

    def __init__(self, informer: SharedInformer) -> None:
        self.store = informer.store


def run_controller(exporter: MetricsExporter, informer: SharedInformer, name: str = "widget") -> Controller:
    """A real controller's worker pool over five keys with every kind of outcome."""
    outcomes: dict[str, Any] = {
        "ok": None,
        "again": Result.requeue(),
        "later": Result.requeue_after(60),
        "bad": RuntimeError("boom"),
        "final": TerminalError("no"),
    }

    def reconcile(request: Request, obj: Any, ctx: Any) -> Any:
        outcome = outcomes[request.uid]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    controller = Controller(
        object(),
        WIDGETS,
        reconcile,
        name=name,
        max_concurrent_reconciles=2,  # type: ignore[arg-type]
        metrics=exporter.reconcile_metrics(name),
        queue_metrics=exporter.workqueue_metrics(name),
    )
    controller.primary_informer = _Primary(informer)  # type: ignore[assignment]
    for uid in outcomes:
        controller.queue.add(Request(uid=uid, kind="Widget", name=uid, namespace="default"))
    controller.queue.shutdown()  # queued keys are still handed out; requeues are dropped
    anyio.run(controller.pool.run)
    return controller


@pytest.fixture
def server() -> Iterator[LocalServer]:
    srv = LocalServer()
    yield srv
    srv.close()


@pytest.fixture
def world(server: LocalServer) -> Iterator[dict[str, Any]]:
    clock = FakeClock()
    client = ApiClient(ClientConfig(host=server.url, qps=-1.0))
    writer = ApiWriter(client, WriterOptions(circuit=CircuitOptions(min_requests=1)))
    permit = writer.breaker.acquire("apps/v1")
    permit.failure()  # one failure in a window of one: the apps/v1 circuit opens
    recorder = EventRecorder(writer, "example.com/widgets")
    recorder.normal({}, "Nothing", "no object reference: counted invalid")
    exporter = MetricsExporter(clock=clock)
    informer = make_informer(clock, label_selector=HUGE_SELECTOR)
    controller = run_controller(exporter, informer)
    exporter.informers = lambda: [informer]
    exporter.controllers = lambda: [controller]
    exporter.client = lambda: client
    exporter.writer = lambda: writer
    exporter.recorder = lambda: recorder
    exporter.leader = lambda: {"abcd1234.example.com": True}
    exporter.request_observer.request_done(method="GET", host="10.0.0.1:6443", code="200", seconds=0.03)
    exporter.request_observer.request_done(method="GET", host="10.0.0.1:6443", code="<error>", seconds=31.0)
    exporter.record_plugin_error("acme-widgets", "load")
    clock.advance(42)
    yield {"exporter": exporter, "informer": informer, "controller": controller, "clock": clock}
    recorder.close()
    writer.close()
    client.close()


def scrape(exporter: MetricsExporter) -> dict[str, Any]:
    """{metric family name as exposed: family}; counters get their ``_total`` back."""
    families = {}
    for family in text_string_to_metric_families(exporter.render().decode()):
        name = family.name + "_total" if family.type == "counter" else family.name
        families[name] = family
    return families


def samples(family: Any, suffix: str = "") -> list[tuple[dict[str, str], float]]:
    if family.type == "counter" and not suffix:
        suffix = "_total"
    return [(s.labels, s.value) for s in family.samples if s.name == family.name + suffix]


EXPECTED: dict[str, tuple[str, set[str]]] = {
    # controller-runtime (shared/notes/daemon-reference.md section 1)
    "controller_runtime_reconcile_total": ("counter", {"controller", "result"}),
    "controller_runtime_reconcile_errors_total": ("counter", {"controller"}),
    "controller_runtime_terminal_reconcile_errors_total": ("counter", {"controller"}),
    "controller_runtime_reconcile_panics_total": ("counter", {"controller"}),
    "controller_runtime_reconcile_timeouts_total": ("counter", {"controller"}),
    "controller_runtime_reconcile_time_seconds": ("histogram", {"controller"}),
    "controller_runtime_max_concurrent_reconciles": ("gauge", {"controller"}),
    "controller_runtime_active_workers": ("gauge", {"controller"}),
    "workqueue_depth": ("gauge", {"name", "controller", "priority"}),
    "workqueue_adds_total": ("counter", {"name", "controller"}),
    "workqueue_retries_total": ("counter", {"name", "controller"}),
    "workqueue_queue_duration_seconds": ("histogram", {"name", "controller"}),
    "workqueue_work_duration_seconds": ("histogram", {"name", "controller"}),
    "workqueue_unfinished_work_seconds": ("gauge", {"name", "controller"}),
    "workqueue_longest_running_processor_seconds": ("gauge", {"name", "controller"}),
    "rest_client_requests_total": ("counter", {"code", "method", "host"}),
    "rest_client_request_duration_seconds": ("histogram", {"verb", "host"}),
    "leader_election_master_status": ("gauge", {"name"}),
    # informerd's own
    "informerd_informer_lists_total": ("counter", {"informer", "resource"}),
    "informerd_informer_relists_total": ("counter", {"informer", "resource", "cause"}),
    "informerd_informer_watch_requests_total": ("counter", {"informer", "resource"}),
    "informerd_informer_watch_restarts_total": ("counter", {"informer", "resource", "cause"}),
    "informerd_informer_events_total": ("counter", {"informer", "resource", "type"}),
    "informerd_informer_cached_objects": ("gauge", {"informer", "resource"}),
    "informerd_informer_cached_bytes": ("gauge", {"informer", "resource"}),
    "informerd_informer_last_event_age_seconds": ("gauge", {"informer", "resource"}),
    "informerd_informer_synced": ("gauge", {"informer", "resource"}),
    "informerd_informer_stalled_seconds": ("gauge", {"informer", "resource"}),
    "informerd_informer_transform_errors_total": ("counter", {"informer", "resource"}),
    "informerd_informer_index_errors_total": ("counter", {"informer", "resource"}),
    "informerd_informer_backoffs_total": ("counter", {"informer", "resource"}),
    "informerd_handler_pending": ("gauge", {"informer", "resource", "handler"}),
    "informerd_handler_delivered_total": ("counter", {"informer", "resource", "handler"}),
    "informerd_handler_errors_total": ("counter", {"informer", "resource", "handler"}),
    "informerd_handler_busy_seconds": ("gauge", {"informer", "resource", "handler"}),
    "informerd_controller_notifications_total": ("counter", {"controller"}),
    "informerd_controller_filtered_notifications_total": ("counter", {"controller"}),
    "informerd_controller_mapping_errors_total": ("counter", {"controller"}),
    "informerd_controller_overrun_threads": ("gauge", {"controller"}),
    "informerd_client_retries_total": ("counter", {"host"}),
    "informerd_client_connection_retries_total": ("counter", {"host"}),
    "informerd_client_throttle_waits_total": ("counter", {"host"}),
    "informerd_client_throttle_seconds_total": ("counter", {"host"}),
    "informerd_client_in_flight_requests": ("gauge", {"host"}),
    "informerd_client_open_watches": ("gauge", {"host"}),
    "informerd_writer_calls_total": ("counter", {"verb"}),
    "informerd_writer_errors_total": ("counter", {"error"}),
    "informerd_writer_attempts_total": ("counter", set()),
    "informerd_writer_retries_total": ("counter", set()),
    "informerd_writer_conflicts_total": ("counter", set()),
    "informerd_writer_in_flight_requests": ("gauge", set()),
    "informerd_writer_waiting_calls": ("gauge", set()),
    "informerd_writer_max_in_flight_requests": ("gauge", set()),
    "informerd_circuit_state": ("gauge", {"group", "state"}),
    "informerd_circuit_shed_total": ("counter", {"group"}),
    "informerd_circuit_opened_total": ("counter", {"group"}),
    **{
        f"informerd_event_recorder_{n}_total": ("counter", set())
        for n in ("recorded", "created", "updated", "combined", "spam_filtered", "dropped", "invalid", "failed")
    },
    "informerd_event_recorder_queued_events": ("gauge", set()),
    "informerd_plugin_errors_total": ("counter", {"plugin", "kind"}),
    "informerd_metrics_source_errors_total": ("counter", {"source"}),
}


def test_every_metric_has_its_name_type_and_label_set(world: dict[str, Any]) -> None:
    families = scrape(world["exporter"])
    for name, (kind, labels) in EXPECTED.items():
        assert name in families, name
        family = families[name]
        assert family.type == kind, name
        assert family.documentation, f"{name} has no HELP"
        for sample in family.samples:
            assert set(sample.labels) - {"le"} == labels, (name, sample)
    ours = {n for n in families if not n.startswith(("process_", "python_"))}
    assert ours == set(EXPECTED), sorted(ours ^ set(EXPECTED))
    assert "process_cpu_seconds_total" in families and "python_info" in families
    assert "python_gc_objects_collected_total" in families


def test_reconcile_outcomes_are_counted_as_controller_runtime_does(world: dict[str, Any]) -> None:
    families = scrape(world["exporter"])
    totals = {l["result"]: v for l, v in samples(families["controller_runtime_reconcile_total"])}
    assert totals == {"success": 1, "error": 2, "requeue": 1, "requeue_after": 1}
    assert samples(families["controller_runtime_terminal_reconcile_errors_total"]) == [({"controller": "widget"}, 1)]
    assert samples(families["controller_runtime_reconcile_errors_total"]) == [({"controller": "widget"}, 2)]
    assert samples(families["controller_runtime_reconcile_panics_total"]) == [({"controller": "widget"}, 1)]
    assert samples(families["controller_runtime_max_concurrent_reconciles"]) == [({"controller": "widget"}, 2)]
    count = samples(families["controller_runtime_reconcile_time_seconds"], "_count")
    assert count == [({"controller": "widget"}, 5)]
    queue = {"name": "widget", "controller": "widget"}
    assert samples(families["workqueue_adds_total"]) == [(queue, 5)]
    assert samples(families["workqueue_depth"]) == [({**queue, "priority": ""}, 0)]
    assert samples(families["workqueue_queue_duration_seconds"], "_count") == [(queue, 5)]
    assert samples(families["workqueue_work_duration_seconds"], "_count") == [(queue, 5)]


def test_a_new_controller_has_every_counter_at_zero(world: dict[str, Any]) -> None:
    exporter = MetricsExporter(process_metrics=False)
    idle = Controller(
        object(),
        WIDGETS,
        lambda r, o, c: None,
        name="idle",  # type: ignore[arg-type]
        metrics=exporter.reconcile_metrics("idle"),
        queue_metrics=exporter.workqueue_metrics("idle"),
    )
    exporter.controllers = lambda: [idle]
    families = scrape(exporter)
    totals = samples(families["controller_runtime_reconcile_total"])
    assert sorted((l["result"], v) for l, v in totals) == [
        ("error", 0),
        ("requeue", 0),
        ("requeue_after", 0),
        ("success", 0),
    ]
    for name in (
        "controller_runtime_reconcile_errors_total",
        "controller_runtime_terminal_reconcile_errors_total",
        "controller_runtime_reconcile_panics_total",
        "controller_runtime_reconcile_timeouts_total",
        "workqueue_adds_total",
        "workqueue_retries_total",
    ):
        assert [v for _, v in samples(families[name])] == [0], name
    assert samples(families["controller_runtime_max_concurrent_reconciles"]) == [({"controller": "idle"}, 1)]
    assert samples(families["controller_runtime_reconcile_time_seconds"], "_count") == [({"controller": "idle"}, 0)]


@pytest.mark.parametrize(
    "name, bounds",
    [
        ("controller_runtime_reconcile_time_seconds", RECONCILE_TIME_BUCKETS),
        ("workqueue_queue_duration_seconds", WORKQUEUE_DURATION_BUCKETS),
        ("workqueue_work_duration_seconds", WORKQUEUE_DURATION_BUCKETS),
        ("rest_client_request_duration_seconds", REST_CLIENT_DURATION_BUCKETS),
    ],
)
def test_histograms_use_the_reference_buckets(world: dict[str, Any], name: str, bounds: tuple[float, ...]) -> None:
    family = scrape(world["exporter"])[name]
    first = next(iter(family.samples)).labels
    same_series = [
        s
        for s in family.samples
        if s.name == name + "_bucket"
        and {k: v for k, v in s.labels.items() if k != "le"} == {k: v for k, v in first.items() if k != "le"}
    ]
    assert [float(s.labels["le"]) for s in same_series] == [*bounds, math.inf]
    counts = [s.value for s in same_series]
    assert counts == sorted(counts)  # cumulative


def test_reference_bucket_values() -> None:
    assert len(RECONCILE_TIME_BUCKETS) == 40 and RECONCILE_TIME_BUCKETS[:4] == (0.005, 0.01, 0.025, 0.05)
    assert RECONCILE_TIME_BUCKETS[-4:] == (25.0, 30.0, 40.0, 50.0, 60.0)[1:]
    assert [f"{b:g}" for b in WORKQUEUE_DURATION_BUCKETS] == [
        "1e-08",
        "1e-07",
        "1e-06",
        "1e-05",
        "0.0001",
        "0.001",
        "0.01",
        "0.1",
        "1",
        "10",
        "100",
        "1000",
    ]
    assert REST_CLIENT_DURATION_BUCKETS == (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)


def test_observations_land_in_the_le_bucket() -> None:
    exporter = MetricsExporter(process_metrics=False)
    hook = exporter.reconcile_metrics("c")
    for seconds in (0.005, 0.0051, 60.0, 61.0):
        hook.on_reconcile("success", seconds)
    assert exporter.reconcile_metrics("c") is hook  # one series per controller
    exporter.controllers = lambda: []
    family = scrape(exporter)["controller_runtime_reconcile_time_seconds"]
    buckets = {s.labels["le"]: s.value for s in family.samples if s.name.endswith("_bucket")}
    assert buckets["0.005"] == 1 and buckets["0.01"] == 2 and buckets["60.0"] == 3 and buckets["+Inf"] == 4
    assert samples(family, "_sum") == [({"controller": "c"}, pytest.approx(0.005 + 0.0051 + 121.0))]


def test_informer_metrics_come_from_its_statistics(world: dict[str, Any]) -> None:
    families = scrape(world["exporter"])
    ((labels, objects),) = samples(families["informerd_informer_cached_objects"])
    assert objects == 2
    assert labels["resource"] == "pods.v1"
    assert labels["informer"].startswith("pods.v1 ns=default sel=")
    assert samples(families["informerd_informer_synced"]) == [(labels, 1.0)]
    assert samples(families["informerd_informer_lists_total"]) == [(labels, 1.0)]
    assert samples(families["informerd_informer_last_event_age_seconds"]) == [(labels, 42.0)]
    assert samples(families["informerd_informer_stalled_seconds"]) == [(labels, 0.0)]  # keeping up
    events = {l["type"]: v for l, v in samples(families["informerd_informer_events_total"])}
    assert events == {"ADDED": 0, "BOOKMARK": 0, "DELETED": 0, "ERROR": 0, "MODIFIED": 1}
    restarts = {l["cause"] for l, _ in samples(families["informerd_informer_watch_restarts_total"])}
    assert restarts == {"closed", "error", "gone", "malformed", "stalled"}
    relists = {l["cause"]: v for l, v in samples(families["informerd_informer_relists_total"])}
    assert set(relists) >= {"gone", "error"} and set(relists.values()) == {0}
    ((hlabels, pending),) = samples(families["informerd_handler_pending"])
    assert pending == 3  # two adds from the list, one update: never delivered (the informer never ran)
    assert samples(families["informerd_handler_busy_seconds"]) == [(hlabels, 0.0)]  # no call in progress
    assert samples(families["informerd_informer_cached_bytes"])[0][1] > 0


def test_values_are_read_at_scrape_time(world: dict[str, Any]) -> None:
    informer, exporter = world["informer"], world["exporter"]
    before = samples(scrape(exporter)["informerd_informer_cached_objects"])[0][1]
    informer.watcher.next_request()
    informer._apply(informer.watcher.on_watch_event({"type": "ADDED", "object": _pod("c", "12")}))
    informer.watcher.on_applied()
    assert samples(scrape(exporter)["informerd_informer_cached_objects"])[0][1] == before + 1


def test_label_values_are_bounded_and_carry_no_selector(world: dict[str, Any]) -> None:
    text = world["exporter"].render().decode()
    assert "app.kubernetes.io/part-" not in text  # the selector itself never appears
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for value in sample.labels.values():
                assert len(value) <= LABEL_LIMIT, (family.name, value[:40])
    handler = samples(scrape(world["exporter"])["informerd_handler_pending"])[0][0]["handler"]
    assert handler.startswith("hhhh") and "~" in handler and len(handler) == LABEL_LIMIT
    exporter = MetricsExporter(process_metrics=False)
    exporter.record_plugin_error("bad\nname" + "x" * 500, "load")
    ((labels, _),) = samples(scrape(exporter)["informerd_plugin_errors_total"])
    assert "\n" not in labels["plugin"] and len(labels["plugin"]) == LABEL_LIMIT


def test_rest_client_observer_through_a_real_client(server: LocalServer) -> None:
    exporter = MetricsExporter(process_metrics=False)
    server.routes["/api"] = lambda h: h.send_json(200, {"kind": "APIVersions"})
    with ApiClient(ClientConfig(host=server.url, qps=-1.0), observer=exporter.request_observer) as client:
        client.request("GET", "/api")
        with pytest.raises(Exception):
            client.request("GET", "/missing")
        host = server.url.split("//", 1)[1]
    families = scrape(exporter)
    assert sorted(
        (l["code"], l["method"], l["host"], v) for l, v in samples(families["rest_client_requests_total"])
    ) == [("200", "GET", host, 1), ("404", "GET", host, 1)]
    assert samples(families["rest_client_request_duration_seconds"], "_count") == [({"verb": "GET", "host": host}, 2)]


def test_circuit_state_is_a_state_set_and_leader_status_is_exported(world: dict[str, Any]) -> None:
    families = scrape(world["exporter"])
    states = {l["state"]: v for l, v in samples(families["informerd_circuit_state"]) if l["group"] == "apps/v1"}
    assert states == {"closed": 0, "open": 1, "half-open": 0}
    assert samples(families["informerd_circuit_opened_total"]) == [({"group": "apps/v1"}, 1)]
    assert samples(families["leader_election_master_status"]) == [({"name": "abcd1234.example.com"}, 1)]
    assert samples(families["informerd_plugin_errors_total"]) == [({"plugin": "acme-widgets", "kind": "load"}, 1)]
    assert samples(families["informerd_event_recorder_invalid_total"]) == [({}, 1)]


def test_no_leader_election_no_leader_metric_and_no_sources_still_scrapes() -> None:
    families = scrape(MetricsExporter(process_metrics=False))
    assert "leader_election_master_status" not in families
    assert samples(families["controller_runtime_reconcile_total"]) == []


def test_a_failing_source_is_left_out_and_counted() -> None:
    exporter = MetricsExporter(process_metrics=False)

    def broken() -> list[Any]:
        raise RuntimeError("statistics unavailable")

    exporter.informers = broken
    families = scrape(exporter)
    assert samples(families["informerd_metrics_source_errors_total"]) == [({"source": "informers"}, 1)]


def test_each_exporter_has_a_private_registry() -> None:
    one, two = MetricsExporter(), MetricsExporter()
    assert one.registry is not two.registry and one.registry is not REGISTRY
    one.record_plugin_error("p", "load")
    assert b"informerd_plugin_errors_total{" not in two.render()
    assert REGISTRY.get_sample_value("informerd_plugin_errors_total", {"plugin": "p", "kind": "load"}) is None
