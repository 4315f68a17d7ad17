"""The hot-path halves of the metrics: histogram hooks that record every observation.

Counters and gauges are read from ``statistics()`` when scraped (``controllers.metrics``), but a
histogram needs each observation, so the exporter hands these objects to the components:
``ReconcileTimeHistogram`` is a ``ReconcileMetrics`` (``controller_runtime_reconcile_time_seconds``),
``WorkQueueHistograms`` a ``WorkQueueMetrics`` (``workqueue_queue_duration_seconds`` and
``workqueue_work_duration_seconds``), ``RestClientMetrics`` a ``RequestObserver``
(``rest_client_requests_total`` and ``rest_client_request_duration_seconds``). An observation is a
bisect into a tuple of bounds and a list increment (under a lock wherever several threads may
observe), 0.1-0.3 us, less than half of ``prometheus_client.Histogram.observe``
(``bench/metrics_scrape.py``); counts are kept per bucket and made cumulative only when scraped.
The buckets are controller-runtime's and client-go's. Nothing here imports ``prometheus_client``.
Invariant: an observation of ``v`` is counted in the first bucket whose bound is >= ``v`` (``le``
semantics), or in the last (+Inf) one, and the +Inf total always equals the observation count.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable

__all__ = [
    "RECONCILE_TIME_BUCKETS",
    "REST_CLIENT_DURATION_BUCKETS",
    "WORKQUEUE_DURATION_BUCKETS",
    "BucketCounts",
    "ReconcileTimeHistogram",
    "RestClientMetrics",
    "WorkQueueHistograms",
]

RECONCILE_TIME_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.15,
    0.2,
    0.25,
    0.3,
    0.35,
    0.4,
    0.45,
    0.5,
    0.6,
    0.7,
    0.8,
    0.9,
    1.0,
    1.25,
    1.5,
    1.75,
    2.0,
    2.5,
    3.0,
    3.5,
    4.0,
    4.5,
    5.0,
    6.0,
    7.0,
    8.0,
    9.0,
    10.0,
    15.0,
    20.0,
    25.0,
    30.0,
    40.0,
    50.0,
    60.0,
)
"""controller-runtime's ``controller_runtime_reconcile_time_seconds`` buckets (seconds)."""

WORKQUEUE_DURATION_BUCKETS: tuple[float, ...] = tuple(10.0**k for k in range(-8, 4))
"""controller-runtime's workqueue histogram buckets: ``ExponentialBuckets(10e-9, 10, 12)``, 1e-8 .. 1e3 s."""

REST_CLIENT_DURATION_BUCKETS: tuple[float, ...] = (
    0.005,
    0.025,
    0.1,
    0.25,
    0.5,
    1.0,
    2.0,
    4.0,
    8.0,
    15.0,
    30.0,
    60.0,
)
"""client-go's ``rest_client_request_duration_seconds`` buckets (seconds)."""


class BucketCounts:
    """One histogram series: per-bucket (non-cumulative) counts, the last for +Inf, and the sum."""

    __slots__ = ("_counts", "_lock", "_sum", "bounds")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self._counts = [0] * (len(bounds) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        """Record ``value``; thread-safe."""
        index = bisect.bisect_left(self.bounds, value)  # first bound >= value
        with self._lock:
            self._counts[index] += 1
            self._sum += value

    def snapshot(self) -> tuple[list[int], float]:
        """(per-bucket counts, sum), consistent with each other."""
        with self._lock:
            return list(self._counts), self._sum


class ReconcileTimeHistogram(BucketCounts):
    """``ReconcileMetrics`` for one controller (``controller_runtime_reconcile_time_seconds``).

    ``on_reconcile`` is called only on the event loop (one writer), so it takes no lock; a scrape
    from another thread may see the sum one observation apart from the counts, never a lost count."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(RECONCILE_TIME_BUCKETS)

    def on_reconcile(self, result: str, seconds: float) -> None:
        self._counts[bisect.bisect_left(RECONCILE_TIME_BUCKETS, seconds)] += 1
        self._sum += seconds

    def snapshot(self) -> tuple[list[int], float]:
        return list(self._counts), self._sum


class WorkQueueHistograms:
    """``WorkQueueMetrics`` for one controller's queue: the two duration histograms. Adds and
    retries are counted by the queue itself and read from its ``statistics()`` when scraped."""

    __slots__ = ("on_done", "on_get", "queue_duration", "work_duration")

    def __init__(self) -> None:
        self.queue_duration = BucketCounts(WORKQUEUE_DURATION_BUCKETS)
        self.work_duration = BucketCounts(WORKQUEUE_DURATION_BUCKETS)
        # Bound methods stored once: the queue's call goes straight to the observation.
        self.on_get: Callable[[float], None] = self.queue_duration.observe
        self.on_done: Callable[[float], None] = self.work_duration.observe

    def on_add(self) -> None:
        return None

    def on_retry(self) -> None:
        return None


class RestClientMetrics:
    """``RequestObserver`` for ``ApiClient(observer=...)``: requests by (code, method, host) and
    latency by (method, host). Thread-safe (requests come from many threads). Hosts and verbs are
    few; codes are HTTP statuses or ``<error>``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str], int] = {}
        self._durations: dict[tuple[str, str], BucketCounts] = {}

    def request_done(self, *, method: str, host: str, code: str, seconds: float) -> None:
        key = (code, method, host)
        with self._lock:
            self._requests[key] = self._requests.get(key, 0) + 1
            histogram = self._durations.get((method, host))
            if histogram is None:
                histogram = self._durations[(method, host)] = BucketCounts(REST_CLIENT_DURATION_BUCKETS)
        histogram.observe(seconds)

    def request_throttled(self, *, method: str, host: str, seconds: float) -> None:
        return None  # counted in ClientStatistics (informerd_client_throttle_*)

    def request_retried(self, *, method: str, host: str, code: str) -> None:
        return None  # counted in ClientStatistics (informerd_client_retries_total)

    def snapshot(self) -> tuple[dict[tuple[str, str, str], int], dict[tuple[str, str], BucketCounts]]:
        """({(code, method, host): requests}, {(method, host): latency histogram})."""
        with self._lock:
            return dict(self._requests), dict(self._durations)
