"""The Prometheus exporter: controller-runtime's and client-go's metrics, plus informerd's own.

Counters and gauges cost nothing on the hot path: a custom collector reads the ``statistics()``
records of the informers, controllers, client, writer (with its circuit breaker) and event
recorder at scrape time, through callables that return the current objects (so a source created
later, or replaced, is picked up by the next scrape). Histograms need every observation, so the
exporter hands out small hook objects: ``reconcile_metrics(name)`` (a ``ReconcileMetrics`` for
``controller_runtime_reconcile_time_seconds``), ``workqueue_metrics(name)`` (a ``WorkQueueMetrics``
for ``workqueue_queue_duration_seconds`` / ``workqueue_work_duration_seconds``) and
``request_observer`` (a ``RequestObserver`` for ``rest_client_request_duration_seconds`` and
``rest_client_requests_total``), defined in ``controllers.observers``; the collector turns their
raw counts into cumulative buckets when scraped. Names, label sets and buckets are controller-runtime's
(``shared/notes/daemon-reference.md`` section 1), so existing dashboards work.

This is the only module of the project that imports ``prometheus_client``. Each exporter owns a
private ``CollectorRegistry`` (never the global one), holding this collector and, by default, the
process, platform and GC collectors.
Invariant: label values never carry object contents: they are resource names, namespaces,
controller/handler/plugin names, HTTP verbs and codes, each cut to at most ``LABEL_LIMIT``
characters (a longer value keeps a prefix and gains a digest), and selectors appear only as a
short digest.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from informers._log import get_logger
from informers.client import ClientStatistics
from informers.clock import SYSTEM_CLOCK, Clock
from informers.informer import InformerStatistics

from .circuit import CircuitState
from .controller import ControllerStatistics
from .observers import (
    RECONCILE_TIME_BUCKETS,
    REST_CLIENT_DURATION_BUCKETS,
    WORKQUEUE_DURATION_BUCKETS,
    ReconcileTimeHistogram,
    RestClientMetrics,
    WorkQueueHistograms,
)
from .recorder import RecorderStatistics
from .writer import WriterStatistics

__all__ = ["CONTENT_TYPE", "LABEL_LIMIT", "MetricsExporter"]

_log = get_logger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Content-Type of ``MetricsExporter.render()``: the classic text format, which every
Prometheus and ``promtool check metrics`` read (the body never needs 1.0.0's UTF-8 names)."""

LABEL_LIMIT = 96
"""Longest label value exported; longer ones become a prefix, ``~`` and an 8-hex digest."""

_RESULTS = ("success", "error", "requeue", "requeue_after")
_RELIST_CAUSES = ("apply-failed", "error", "gone", "streaming-incomplete", "streaming-unsupported")


# --- label values -------------------------------------------------------------------------------


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def _bounded(value: object) -> str:
    """``value`` as a label value of at most ``LABEL_LIMIT`` characters, without control characters."""
    text = str(value)
    if len(text) <= LABEL_LIMIT and text.isprintable():
        return text
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return f"{clean[: LABEL_LIMIT - 9]}~{_digest(text)}"


def _informer_labels(informer: Any, stats: InformerStatistics) -> tuple[str, str]:
    """(``informer``, ``resource``): resource, namespace and a digest of the selectors, never the
    selectors themselves (they can be long and say more than a label should)."""
    resource = getattr(informer, "resource", None)
    if resource is None:
        name = _bounded(stats.name)
        return name, name
    parts = [str(resource)]
    namespace = getattr(informer, "namespace", None)
    if namespace:
        parts.append(f"ns={namespace}")
    labels, fields = getattr(informer, "label_selector", None), getattr(informer, "field_selector", None)
    if labels or fields:
        parts.append("sel=" + _digest(f"{labels or ''}\n{fields or ''}"))
    return _bounded(" ".join(parts)), _bounded(resource)


def _buckets(bounds: tuple[float, ...], counts: list[int]) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    total = 0
    for bound, count in zip((*map(floatToGoString, bounds), "+Inf"), counts, strict=True):
        total += count
        out.append((bound, float(total)))
    return out


# --- sources ------------------------------------------------------------------------------------


class _HasStatistics(Protocol):
    def statistics(self) -> Any: ...


_Source = Callable[[], Any]


def _nothing() -> None:
    return None


class MetricsExporter:
    """One Prometheus registry over an informerd process; see the module docstring.

    Sources are callables returning the current objects (any of them may return None or an empty
    iterable while a component is not running): ``informers()`` -> shared informers (the factory's
    ``informers``), ``controllers()`` -> ``Controller``s, ``client()`` -> the ``ApiClient``,
    ``writer()`` -> the ``ApiWriter`` (its circuit breaker included), ``recorder()`` -> the
    ``EventRecorder``, ``leader()`` -> ``{lease name: leading}`` (empty or None without leader
    election). ``process_metrics`` (default True) adds the ``process_*``, ``python_info`` and
    ``python_gc_*`` collectors.
    """

    def __init__(
        self,
        *,
        informers: Callable[[], Iterable[Any] | None] = _nothing,
        controllers: Callable[[], Iterable[Any] | None] = _nothing,
        client: _Source = _nothing,
        writer: _Source = _nothing,
        recorder: _Source = _nothing,
        leader: Callable[[], Mapping[str, bool] | None] = _nothing,
        process_metrics: bool = True,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.informers = informers
        self.controllers = controllers
        self.client = client
        self.writer = writer
        self.recorder = recorder
        self.leader = leader
        self._clock = clock
        self._lock = threading.Lock()
        self._reconcile: dict[str, ReconcileTimeHistogram] = {}
        self._queues: dict[str, WorkQueueHistograms] = {}
        self._plugin_errors: dict[tuple[str, str], int] = {}
        self._scrape_errors: dict[str, int] = {}
        self.request_observer = RestClientMetrics()
        """Pass to ``ApiClient(observer=...)``."""
        self.registry = CollectorRegistry()
        self.registry.register(_Collector(self))
        if process_metrics:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)

    # -- hooks the Manager hands to its components ----------------------------------------------

    def reconcile_metrics(self, controller: str) -> ReconcileTimeHistogram:
        """The ``metrics=`` hook of the controller named ``controller`` (the same object each time)."""
        with self._lock:
            return self._reconcile.setdefault(controller, ReconcileTimeHistogram())

    def workqueue_metrics(self, controller: str) -> WorkQueueHistograms:
        """The ``queue_metrics=`` hook of the controller named ``controller`` (the same object each time)."""
        with self._lock:
            return self._queues.setdefault(controller, WorkQueueHistograms())

    def record_plugin_error(self, plugin: str, kind: str) -> None:
        """Count one failure of ``plugin`` (``informerd_plugin_errors_total{plugin,kind}``); ``kind``
        says where (e.g. ``load``, ``handler``, ``reconcile``)."""
        key = (_bounded(plugin), _bounded(kind))
        with self._lock:
            self._plugin_errors[key] = self._plugin_errors.get(key, 0) + 1

    # -- output ---------------------------------------------------------------------------------

    def render(self) -> bytes:
        """The text exposition of every metric (``Content-Type: CONTENT_TYPE``). Reads statistics
        under their owners' locks: call it off the event loop (the servers run it in a thread)."""
        return generate_latest(self.registry)

    def _source_failed(self, source: str, exc: BaseException) -> None:
        with self._lock:
            self._scrape_errors[source] = self._scrape_errors.get(source, 0) + 1
        _log.error(
            "metrics source failed; its metrics are left out of this scrape",
            source=source,
            error=f"{type(exc).__name__}: {exc}",
        )

    def _read(self, source: str, get: Callable[[], Any]) -> Any:
        try:
            return get()
        except Exception as exc:  # noqa: BLE001 - one broken source must not fail the scrape
            self._source_failed(source, exc)
            return None

    def _statistics(self, source: str, objects: Iterable[_HasStatistics] | None) -> list[tuple[Any, Any]]:
        out: list[tuple[Any, Any]] = []
        for obj in objects or ():
            stats = self._read(source, obj.statistics)
            if stats is not None:
                out.append((obj, stats))
        return out


# --- the collector ------------------------------------------------------------------------------


def _counter(name: str, doc: str, labels: Sequence[str]) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, labels=list(labels))


def _gauge(name: str, doc: str, labels: Sequence[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


class _Collector(Collector):
    """Builds every family from the exporter's sources at scrape time."""

    def __init__(self, exporter: MetricsExporter) -> None:
        self._x = exporter

    def describe(self) -> Iterable[Metric]:
        return ()  # no fixed set: series come and go with informers and controllers

    def collect(self) -> Iterable[Metric]:
        x = self._x
        controllers = x._statistics("controllers", x._read("controllers", x.controllers))
        yield from _controller_families([s for _, s in controllers], x)
        informers = x._statistics("informers", x._read("informers", x.informers))
        yield from _informer_families(informers, x._clock.time())
        yield from _rest_families(x.request_observer)
        client = x._read("client", x.client)
        client_stats = None if client is None else x._read("client", client.statistics)
        yield from _client_families(client_stats)
        writer = x._read("writer", x.writer)
        yield from _writer_families(None if writer is None else x._read("writer", writer.statistics))
        recorder = x._read("recorder", x.recorder)
        yield from _recorder_families(None if recorder is None else x._read("recorder", recorder.statistics))
        yield from _leader_families(x._read("leader", x.leader))
        with x._lock:
            plugin_errors = dict(x._plugin_errors)
            scrape_errors = dict(x._scrape_errors)
        plugins = _counter("informerd_plugin_errors_total", "Plugin failures by plugin and kind.", ["plugin", "kind"])
        for (plugin, kind), count in sorted(plugin_errors.items()):
            plugins.add_metric([plugin, kind], count)
        yield plugins
        scrapes = _counter(
            "informerd_metrics_source_errors_total",
            "Scrapes that left a source out because its statistics() raised.",
            ["source"],
        )
        for source, count in sorted(scrape_errors.items()):
            scrapes.add_metric([source], count)
        yield scrapes


def _controller_families(stats: list[ControllerStatistics], x: MetricsExporter) -> Iterator[Metric]:
    label = ["controller"]
    total = _counter(
        "controller_runtime_reconcile_total", "Total number of reconciliations per controller", ["controller", "result"]
    )
    errors = _counter(
        "controller_runtime_reconcile_errors_total", "Total number of reconciliation errors per controller", label
    )
    terminal = _counter(
        "controller_runtime_terminal_reconcile_errors_total",
        "Total number of terminal reconciliation errors per controller",
        label,
    )
    panics = _counter(
        "controller_runtime_reconcile_panics_total", "Total number of reconciliation panics per controller", label
    )
    timeouts = _counter(
        "controller_runtime_reconcile_timeouts_total", "Total number of reconciliation timeouts per controller", label
    )
    max_workers = _gauge(
        "controller_runtime_max_concurrent_reconciles", "Maximum number of concurrent reconciles per controller", label
    )
    active = _gauge("controller_runtime_active_workers", "Number of currently used workers per controller", label)
    q = ["name", "controller"]
    depth = _gauge("workqueue_depth", "Current depth of workqueue", [*q, "priority"])
    adds = _counter("workqueue_adds_total", "Total number of adds handled by workqueue", q)
    retries = _counter("workqueue_retries_total", "Total number of retries handled by workqueue", q)
    unfinished = _gauge(
        "workqueue_unfinished_work_seconds",
        "How many seconds of work has been done that is in progress and hasn't been observed by "
        "work_duration. Large values indicate stuck threads. One can deduce the number of stuck threads "
        "by observing the rate at which this increases.",
        q,
    )
    longest = _gauge(
        "workqueue_longest_running_processor_seconds",
        "How many seconds has the longest running processor for workqueue been running.",
        q,
    )
    notes = _counter(
        "informerd_controller_notifications_total",
        "Informer notifications received by the controller's triggers.",
        label,
    )
    filtered = _counter(
        "informerd_controller_filtered_notifications_total",
        "Notifications dropped by the controller's predicates.",
        label,
    )
    mapping = _counter(
        "informerd_controller_mapping_errors_total",
        "Notifications whose predicate or mapper raised (logged, dropped).",
        label,
    )
    overrun = _gauge(
        "informerd_controller_overrun_threads",
        "Sync reconciles abandoned after their timeout whose threads still run.",
        label,
    )
    for s in stats:
        name = _bounded(s.name)
        w = s.workers
        for result, count in zip(
            _RESULTS, (w.success_total, w.error_total, w.requeue_total, w.requeue_after_total), strict=True
        ):
            total.add_metric([name, result], count)
        errors.add_metric([name], w.error_total)
        terminal.add_metric([name], w.terminal_errors_total)
        panics.add_metric([name], w.panics_total)
        timeouts.add_metric([name], w.timeouts_total)
        max_workers.add_metric([name], w.max_concurrent_reconciles)
        active.add_metric([name], w.active_workers)
        qs = s.queue
        depth.add_metric([name, name, ""], qs.depth)
        adds.add_metric([name, name], qs.adds_total)
        retries.add_metric([name, name], qs.retries_total)
        unfinished.add_metric([name, name], qs.unfinished_work_seconds)
        longest.add_metric([name, name], qs.longest_running_processor_seconds)
        notes.add_metric([name], s.notifications_total)
        filtered.add_metric([name], s.filtered_total)
        mapping.add_metric([name], s.mapping_errors_total)
        overrun.add_metric([name], w.overrun_threads)
    yield from (total, errors, terminal, panics, timeouts, max_workers, active)
    with x._lock:
        reconcile = sorted(x._reconcile.items())
        queues = sorted(x._queues.items())
    reconcile_time = HistogramMetricFamily(
        "controller_runtime_reconcile_time_seconds", "Length of time per reconciliation per controller", labels=label
    )
    for controller, histogram in reconcile:
        counts, seconds = histogram.snapshot()
        reconcile_time.add_metric([_bounded(controller)], _buckets(RECONCILE_TIME_BUCKETS, counts), seconds)
    yield reconcile_time
    yield from (depth, adds, retries)
    queue_time = HistogramMetricFamily(
        "workqueue_queue_duration_seconds",
        "How long in seconds an item stays in workqueue before being requested",
        labels=q,
    )
    work_time = HistogramMetricFamily(
        "workqueue_work_duration_seconds", "How long in seconds processing an item from workqueue takes.", labels=q
    )
    for controller, hooks in queues:
        name = _bounded(controller)
        for family, raw in ((queue_time, hooks.queue_duration), (work_time, hooks.work_duration)):
            counts, seconds = raw.snapshot()
            family.add_metric([name, name], _buckets(WORKQUEUE_DURATION_BUCKETS, counts), seconds)
    yield from (queue_time, work_time, unfinished, longest, notes, filtered, mapping, overrun)


def _rest_families(observer: RestClientMetrics) -> Iterator[Metric]:
    requests, durations = observer.snapshot()
    total = _counter(
        "rest_client_requests_total",
        "Number of HTTP requests, partitioned by status code, method, and host.",
        ["code", "method", "host"],
    )
    for (code, method, host), count in sorted(requests.items()):
        total.add_metric([_bounded(code), _bounded(method), _bounded(host)], count)
    yield total
    latency = HistogramMetricFamily(
        "rest_client_request_duration_seconds",
        "Request latency in seconds. Broken down by verb, and host.",
        labels=["verb", "host"],
    )
    for (method, host), histogram in sorted(durations.items()):
        counts, seconds = histogram.snapshot()
        latency.add_metric([_bounded(method), _bounded(host)], _buckets(REST_CLIENT_DURATION_BUCKETS, counts), seconds)
    yield latency


def _informer_families(informers: list[tuple[Any, InformerStatistics]], now: float) -> Iterator[Metric]:
    il = ["informer", "resource"]
    lists = _counter(
        "informerd_informer_lists_total", "List cycles started (paginated or streaming), the first included.", il
    )
    relists = _counter("informerd_informer_relists_total", "List cycles after the first one, by cause.", [*il, "cause"])
    watches = _counter("informerd_informer_watch_requests_total", "Watch requests sent.", il)
    restarts = _counter("informerd_informer_watch_restarts_total", "Re-watches by cause.", [*il, "cause"])
    events = _counter("informerd_informer_events_total", "Watch events received, by type.", [*il, "type"])
    objects = _gauge("informerd_informer_cached_objects", "Objects in the informer's cache.", il)
    held = _gauge(
        "informerd_informer_cached_bytes",
        "Bytes of the cached JSON payloads (excluding per-entry and index overhead).",
        il,
    )
    age = _gauge(
        "informerd_informer_last_event_age_seconds",
        "Seconds since the last list page or watch event (absent before the first).",
        il,
    )
    synced = _gauge("informerd_informer_synced", "1 once the first full list is in the cache, else 0.", il)
    stalled = _gauge(
        "informerd_informer_stalled_seconds",
        "Seconds the progress check has found the informer behind or ahead of the server (0: keeping up).",
        il,
    )
    transform = _counter(
        "informerd_informer_transform_errors_total", "Objects whose transform raised (cached untransformed).", il
    )
    index = _counter(
        "informerd_informer_index_errors_total", "Objects an index function failed on (cached, unindexed there).", il
    )
    backoffs = _counter("informerd_informer_backoffs_total", "Waits of the list/watch loop after a failure.", il)
    hl = [*il, "handler"]
    pending = _gauge("informerd_handler_pending", "Notifications buffered for the handler, not yet handled.", hl)
    delivered = _counter("informerd_handler_delivered_total", "Notifications handled.", hl)
    handler_errors = _counter("informerd_handler_errors_total", "Notifications whose handler raised.", hl)
    busy = _gauge(
        "informerd_handler_busy_seconds",
        "How long the handler's call in progress has been running (0: idle); grows while a call hangs.",
        hl,
    )
    for informer, s in informers:
        labels = list(_informer_labels(informer, s))
        w = s.watcher
        lists.add_metric(labels, w.lists)
        for cause, count in sorted({**dict.fromkeys(_RELIST_CAUSES, 0), **w.relist_causes}.items()):
            relists.add_metric([*labels, _bounded(cause)], count)
        watches.add_metric(labels, w.watch_requests)
        for cause, count in sorted(w.watch_restarts.items()):
            restarts.add_metric([*labels, _bounded(cause)], count)
        for etype, count in sorted(w.events.items()):
            events.add_metric([*labels, _bounded(etype)], count)
        objects.add_metric(labels, s.objects)
        held.add_metric(labels, s.store.bytes_held)
        if w.last_event_time is not None:
            age.add_metric(labels, max(0.0, now - w.last_event_time))
        synced.add_metric(labels, 1.0 if s.synced else 0.0)
        since = s.progress.stalled_since
        stalled.add_metric(labels, 0.0 if since is None else max(0.0, now - since))
        transform.add_metric(labels, s.transform_errors)
        index.add_metric(labels, s.store.index_errors)
        backoffs.add_metric(labels, s.reflector.backoffs)
        for h in s.handlers:
            hlabels = [*labels, _bounded(h.name)]
            pending.add_metric(hlabels, h.pending)
            delivered.add_metric(hlabels, h.delivered)
            handler_errors.add_metric(hlabels, h.errors)
            busy.add_metric(hlabels, h.busy_seconds)
    yield from (
        lists,
        relists,
        watches,
        restarts,
        events,
        objects,
        held,
        age,
        synced,
        stalled,
        transform,
        index,
        backoffs,
        pending,
        delivered,
        handler_errors,
        busy,
    )


def _client_families(s: ClientStatistics | None) -> Iterator[Metric]:
    host = ["host"]
    families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {
        "retries": _counter(
            "informerd_client_retries_total", "Requests repeated after a 429/5xx with Retry-After.", host
        ),
        "connection_retries": _counter(
            "informerd_client_connection_retries_total", "GETs repeated after a connection failure.", host
        ),
        "throttle_waits": _counter(
            "informerd_client_throttle_waits_total",
            "Requests that waited for the client-side rate limiter (QPS/Burst).",
            host,
        ),
        "throttle_seconds": _counter(
            "informerd_client_throttle_seconds_total", "Seconds spent waiting for the client-side rate limiter.", host
        ),
        "in_flight": _gauge("informerd_client_in_flight_requests", "Requests being sent or awaiting an answer.", host),
        "open_watches": _gauge("informerd_client_open_watches", "Watch streams open.", host),
    }
    if s is not None:
        for field, family in families.items():
            family.add_metric([_bounded(s.host)], float(getattr(s, field)))
    yield from families.values()


def _writer_families(s: WriterStatistics | None) -> Iterator[Metric]:
    calls = _counter("informerd_writer_calls_total", "ApiWriter calls by verb.", ["verb"])
    errors = _counter("informerd_writer_errors_total", "ApiWriter calls that raised, by error class.", ["error"])
    scalars: dict[str, CounterMetricFamily | GaugeMetricFamily] = {
        "attempts": _counter("informerd_writer_attempts_total", "Requests sent by the writer (retries included).", []),
        "retries": _counter("informerd_writer_retries_total", "Requests the writer repeated.", []),
        "conflicts": _counter("informerd_writer_conflicts_total", "Optimistic-concurrency conflicts raised.", []),
        "in_flight": _gauge("informerd_writer_in_flight_requests", "Writer requests in flight.", []),
        "waiting": _gauge("informerd_writer_waiting_calls", "Calls waiting for an in-flight slot.", []),
        "max_in_flight": _gauge(
            "informerd_writer_max_in_flight_requests", "The writer's cap on requests in flight.", []
        ),
    }
    group = ["group"]
    state = _gauge(
        "informerd_circuit_state", "1 for the state each API group's circuit is in, else 0.", ["group", "state"]
    )
    shed = _counter("informerd_circuit_shed_total", "Calls refused by an open circuit, never sent.", group)
    opened = _counter("informerd_circuit_opened_total", "Times the circuit opened.", group)
    if s is not None:
        for verb, count in sorted(s.calls.items()):
            calls.add_metric([_bounded(verb)], count)
        for error, count in sorted(s.errors.items()):
            errors.add_metric([_bounded(error)], count)
        for field, family in scalars.items():
            family.add_metric([], float(getattr(s, field)))
        for name, g in sorted(s.circuit.groups.items()):
            label = _bounded(name)
            for candidate in CircuitState:
                state.add_metric([label, candidate.value], 1.0 if g.state is candidate else 0.0)
            shed.add_metric([label], g.shed)
            opened.add_metric([label], g.opened)
    yield from (calls, errors, *scalars.values(), state, shed, opened)


_RECORDER_COUNTERS = {
    "recorded": "Events accepted into the recorder's queue.",
    "created": "Event objects created.",
    "updated": "Series updates of an existing Event (repeats).",
    "combined": "Events folded into a combined Event.",
    "spam_filtered": "Events dropped by the spam filter.",
    "dropped": "Events dropped because the queue was full or the recorder closed.",
    "invalid": "Events rejected before queueing (bad type, no usable object reference).",
    "failed": "Event writes that failed after the writer's retries.",
}


def _recorder_families(s: RecorderStatistics | None) -> Iterator[Metric]:
    for field, doc in _RECORDER_COUNTERS.items():
        family = _counter(f"informerd_event_recorder_{field}_total", doc, [])
        if s is not None:
            family.add_metric([], getattr(s, field))
        yield family
    queued = _gauge("informerd_event_recorder_queued_events", "Events waiting to be written.", [])
    if s is not None:
        queued.add_metric([], s.queued)
    yield queued


def _leader_families(leases: Mapping[str, bool] | None) -> Iterator[Metric]:
    if not leases:
        return  # controller-runtime registers it only with leader election
    family = _gauge(
        "leader_election_master_status",
        "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates "
        "master. 'name' is the string used to identify the lease. Please make sure to group by name.",
        ["name"],
    )
    for name, leading in sorted(leases.items()):
        family.add_metric([_bounded(name)], 1.0 if leading else 0.0)
    yield family
