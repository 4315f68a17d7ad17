"""Kubernetes Events about objects, aggregated and rate-limited, written off the caller's thread.

``EventRecorder.record`` turns one call into an ``events.k8s.io/v1`` Event (or a core ``v1`` Event)
about a regarding object, and hands it to a background thread through a small bounded queue, so a
reconciler never waits for the apiserver and never sees an error from recording (failures are
logged and counted). The thread runs ``EventCorrelator``, which applies client-go's rules in order:
*aggregation* (more than ``aggregate_max - 1`` = 9 different notes with the same object, type,
reason and action within ``aggregate_window`` = 600 s of each other become one Event whose note
starts with "(combined from similar events): "), a *spam filter* (a token bucket per reporting
controller + object: burst 25, then one Event per 300 s; the rest are dropped), and *series*
(an identical Event within ``series_window`` of its last occurrence patches the existing Event's
``series.count``/``series.lastObservedTime``, or core ``count``/``lastTimestamp``, instead of
creating another). Its caches are LRUs of ``cache_size`` (4096) keys, as client-go's.
Invariant: ``record`` never raises and never blocks on I/O; every recorded call ends counted as
exactly one of created, updated, spam-filtered, dropped, invalid or failed.
"""

from __future__ import annotations

import re
import socket
import threading
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from informers._log import get_logger
from informers._tokenbucket import TokenBucket
from informers.clock import SYSTEM_CLOCK, Clock
from informers.errors import NotFoundError
from informers.resources import Resource

from .writer import ApiWriter, PatchType

__all__ = [
    "COMBINED_PREFIX",
    "CORE_EVENTS",
    "EVENTS_V1",
    "Correlation",
    "EventCorrelator",
    "EventRecord",
    "EventRecorder",
    "RecorderOptions",
    "RecorderStatistics",
    "object_reference",
]

_log = get_logger(__name__)

EVENTS_V1 = Resource("events.k8s.io", "v1", "events", "Event", namespaced=True)
CORE_EVENTS = Resource("", "v1", "events", "Event", namespaced=True)
COMBINED_PREFIX = "(combined from similar events): "

_TYPES = frozenset({"Normal", "Warning"})
_NOTE_LIMIT = 1024  # bytes: the apiserver's limit on an events.k8s.io note
_FIELD_LIMIT = 128  # reason, action and reportingInstance
_NAME_LIMIT = 253
_QUALIFIED = re.compile(
    r"^(?:[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_REF_FIELDS = ("apiVersion", "kind", "namespace", "name", "uid")


@dataclass(frozen=True, slots=True)
class RecorderOptions:
    """Aggregation, spam-filter and queue settings; the defaults are client-go's. Durations in seconds."""

    api: Resource = EVENTS_V1
    """Where Events go: ``EVENTS_V1`` (default) or ``CORE_EVENTS`` for clusters older than 1.19."""
    queue_size: int = 1000
    """Recorded events waiting for the background thread; more are dropped (counted). Default 1000."""
    series_window: float = 360.0
    """An identical event within this many seconds of its last occurrence updates the existing
    Event (client-go's events library and kube-rs use 6 minutes). Default 360 s."""
    aggregate_window: float = 600.0
    """Similar events (same object, type, reason, action) further apart than this start a fresh
    aggregation record. Default 600 s."""
    aggregate_max: int = 10
    """The ``aggregate_max``-th different note among similar events is combined. Default 10."""
    spam_burst: int = 25
    """Events per reporting controller + object written at once before the rate applies. Default 25."""
    spam_interval: float = 300.0
    """After the burst, one event per this many seconds per controller + object. Default 300 s."""
    cache_size: int = 4096
    """Keys kept in each LRU cache (aggregation, spam, series). Default 4096."""

    def __post_init__(self) -> None:
        for name in ("queue_size", "aggregate_max", "spam_burst", "cache_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        for name in ("series_window", "aggregate_window", "spam_interval"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be a positive number of seconds")
        if self.api.plural != "events":
            raise ValueError(f"api must be EVENTS_V1 or CORE_EVENTS, got {self.api}")


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One ``record`` call, normalized; ``monotonic``/``wall`` are the clock readings at the call."""

    regarding: Mapping[str, str]
    related: Mapping[str, str] | None
    type: str
    reason: str
    action: str
    note: str
    monotonic: float
    wall: float


@dataclass(frozen=True, slots=True)
class Correlation:
    """What to write for an ``EventRecord``: a new Event (count 1, or more after an expired one)
    or a series update of the existing Event ``name``."""

    create: bool
    name: str
    namespace: str
    note: str
    count: int
    first_wall: float
    last_wall: float
    combined: bool
    key: tuple[Any, ...] = field(repr=False)


@dataclass(frozen=True, slots=True)
class RecorderStatistics:
    recorded: int
    """Calls accepted into the queue."""
    created: int
    updated: int
    """Series updates of an existing Event (repeats)."""
    combined: int
    """Events folded into a "combined from similar events" Event."""
    spam_filtered: int
    dropped: int
    """Calls dropped because the queue was full or the recorder closed."""
    invalid: int
    """Calls rejected before queueing (bad type, no usable object reference)."""
    failed: int
    """Writes that failed after the writer's retries."""
    queued: int


def object_reference(obj: Mapping[str, Any], resource: Resource | None = None) -> dict[str, str]:
    """An ObjectReference for ``obj``: a full object, or a mapping that already is a reference.

    ``apiVersion``/``kind`` missing from the object (list items carry none) come from ``resource``.
    Raises ``ValueError`` when no name or kind can be found.
    """
    meta = obj.get("metadata")
    source: Mapping[str, Any] = meta if isinstance(meta, Mapping) else obj
    ref: dict[str, str] = {}
    for key, value in (
        ("apiVersion", obj.get("apiVersion")),
        ("kind", obj.get("kind")),
        ("namespace", source.get("namespace")),
        ("name", source.get("name")),
        ("uid", source.get("uid")),
        ("resourceVersion", source.get("resourceVersion")),
    ):
        if isinstance(value, str) and value:
            ref[key] = value
    if resource is not None:
        ref.setdefault("apiVersion", resource.api_version)
        if resource.kind:
            ref.setdefault("kind", resource.kind)
    if "name" not in ref or "kind" not in ref:
        raise ValueError("an Event needs the regarding object's kind and name (pass resource= for list items)")
    return ref


def _identity(ref: Mapping[str, str] | None) -> tuple[str, ...]:
    # resourceVersion is left out: events about one object at different versions are still alike.
    return tuple(ref.get(k, "") for k in _REF_FIELDS) if ref else ()


@dataclass(slots=True)
class _Aggregate:
    notes: set[str]
    last: float


@dataclass(slots=True)
class _Series:
    name: str
    namespace: str
    count: int
    first_wall: float
    last_monotonic: float


class _Lru(OrderedDict[Any, Any]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def touch(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


class EventCorrelator:
    """Aggregation, spam filtering and series bookkeeping for one reporting controller.

    Pure bookkeeping (no I/O); not thread-safe: the recorder calls it from its one thread.
    """

    def __init__(self, controller: str, options: RecorderOptions | None = None, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.controller = controller
        self.options = options or RecorderOptions()
        self._clock = clock
        self._aggregates = _Lru(self.options.cache_size)
        self._spam = _Lru(self.options.cache_size)
        self._series = _Lru(self.options.cache_size)
        self._last_name_ns = 0

    def observe(self, record: EventRecord) -> Correlation | None:
        """The write to make for ``record``, or None when the spam filter drops it."""
        options = self.options
        similar = (_identity(record.regarding), _identity(record.related), record.type, record.reason, record.action)
        aggregate = self._aggregates.get(similar)
        if aggregate is None or record.monotonic - aggregate.last > options.aggregate_window:
            aggregate = _Aggregate(set(), record.monotonic)
        aggregate.notes.add(record.note)
        aggregate.last = record.monotonic
        self._aggregates.touch(similar, aggregate)
        combined = len(aggregate.notes) >= options.aggregate_max
        if combined:
            # Keep the set below the limit, so every further new note is combined too (client-go).
            aggregate.notes.pop()
        note = COMBINED_PREFIX + record.note if combined else record.note

        spam_key = (self.controller, _identity(record.regarding))
        bucket = self._spam.get(spam_key)
        if bucket is None:
            bucket = TokenBucket(1.0 / options.spam_interval, options.spam_burst, clock=self._clock)
        self._spam.touch(spam_key, bucket)
        if not bucket.try_take():
            return None

        key = (similar, None if combined else record.note)
        series = self._series.get(key)
        if series is not None and record.monotonic - series.last_monotonic <= options.series_window:
            series.count += 1
            series.last_monotonic = record.monotonic
            self._series.touch(key, series)
            return Correlation(
                False, series.name, series.namespace, note, series.count, series.first_wall, record.wall, combined, key
            )
        namespace = record.regarding.get("namespace") or "default"
        series = _Series(self._event_name(record), namespace, 1, record.wall, record.monotonic)
        self._series.touch(key, series)
        return Correlation(True, series.name, namespace, note, 1, record.wall, record.wall, combined, key)

    def forget(self, key: tuple[Any, ...]) -> None:
        """Drop a series (its Event could not be written): the next identical event creates one."""
        self._series.pop(key, None)

    def restart(self, key: tuple[Any, ...], name: str) -> None:
        """Point a series at a newly created Event (the old one expired from the API)."""
        series = self._series.get(key)
        if series is not None:
            series.name = name

    def new_name(self, record: EventRecord) -> str:
        return self._event_name(record)

    def _event_name(self, record: EventRecord) -> str:
        # client-go's "<object name>.<unix nanoseconds in hex>", kept unique within this recorder.
        ns = max(int(record.wall * 1e9), self._last_name_ns + 1)
        self._last_name_ns = ns
        suffix = f".{ns:x}"
        return record.regarding["name"][: _NAME_LIMIT - len(suffix)] + suffix


def _micro_time(wall: float) -> str:
    return datetime.fromtimestamp(wall, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _time(wall: float) -> str:
    return datetime.fromtimestamp(wall, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _truncate_bytes(text: str, limit: int) -> str:
    encoded = text.encode()
    return text if len(encoded) <= limit else encoded[:limit].decode("utf-8", "ignore")


class EventRecorder:
    """Records Events for one reporting controller through an ``ApiWriter``; start-on-create.

    ``controller`` is the ``reportingController`` (a qualified name such as
    ``example.com/widget-controller``); ``instance`` the ``reportingInstance`` (default
    ``<controller>-<hostname>``). Call ``close()`` at shutdown; ``flush()`` waits for the queue.
    """

    def __init__(
        self,
        writer: ApiWriter,
        controller: str,
        *,
        instance: str | None = None,
        options: RecorderOptions | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not _QUALIFIED.match(controller) or len(controller) > _NAME_LIMIT:
            raise ValueError(
                f"reportingController must be a qualified name like example.com/my-controller, got {controller!r}"
            )
        self.writer = writer
        self.controller = controller
        self.instance = (instance or f"{controller.rpartition('/')[2]}-{socket.gethostname()}")[:_FIELD_LIMIT]
        self.options = options or RecorderOptions()
        self._clock = clock
        self._correlator = EventCorrelator(controller, self.options, clock=clock)
        self._cond = threading.Condition()
        self._queue: deque[EventRecord] = deque()
        self._busy = False
        self._closing = False
        self._stopping = False
        self._counts = dict.fromkeys(
            ("recorded", "created", "updated", "combined", "spam_filtered", "dropped", "invalid", "failed"), 0
        )
        self._thread = threading.Thread(target=self._run, name=f"event-recorder-{controller}", daemon=True)
        self._thread.start()

    # -- the caller's side ----------------------------------------------------------------------

    def record(
        self,
        regarding: Mapping[str, Any],
        event_type: str,
        reason: str,
        note: str,
        *,
        action: str | None = None,
        related: Mapping[str, Any] | None = None,
        resource: Resource | None = None,
    ) -> bool:
        """Queue an Event about ``regarding``; True if queued. Never raises, never waits.

        ``event_type`` is ``"Normal"`` or ``"Warning"``; ``reason`` a CamelCase word (``Synced``);
        ``action`` what was done or failed (default: the reason); ``note`` a human sentence
        (cut at 1024 bytes). ``resource`` supplies apiVersion/kind when the object lacks them.
        """
        try:
            if event_type not in _TYPES:
                raise ValueError(f"event type must be Normal or Warning, got {event_type!r}")
            if not reason:
                raise ValueError("an Event needs a reason")
            entry = EventRecord(
                regarding=object_reference(regarding, resource),
                related=object_reference(related) if related is not None else None,
                type=event_type,
                reason=reason[:_FIELD_LIMIT],
                action=(action or reason)[:_FIELD_LIMIT],
                note=_truncate_bytes(note, _NOTE_LIMIT),
                monotonic=self._clock.monotonic(),
                wall=self._clock.time(),
            )
        except Exception as exc:  # noqa: BLE001 - a bad call is the caller's bug; recording must not fail it
            self._count("invalid")
            _log.error("event not recorded: invalid", controller=self.controller, reason=reason, error=str(exc))
            return False
        with self._cond:
            if self._closing or len(self._queue) >= self.options.queue_size:
                self._counts["dropped"] += 1
                return False
            self._queue.append(entry)
            self._counts["recorded"] += 1
            self._cond.notify_all()
        return True

    def normal(self, regarding: Mapping[str, Any], reason: str, note: str, **kwargs: Any) -> bool:
        return self.record(regarding, "Normal", reason, note, **kwargs)

    def warning(self, regarding: Mapping[str, Any], reason: str, note: str, **kwargs: Any) -> bool:
        return self.record(regarding, "Warning", reason, note, **kwargs)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued event was written (or dropped); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop accepting events, write what is queued (up to ``timeout`` s), stop the thread."""
        with self._cond:
            self._closing = True
        self.flush(timeout)
        with self._cond:
            self._stopping = True
            leftover = len(self._queue)
            self._queue.clear()
            self._counts["dropped"] += leftover
            self._cond.notify_all()
        if leftover:
            _log.warning("event recorder closed with events unwritten", controller=self.controller, dropped=leftover)
        self._thread.join(timeout)

    def statistics(self) -> RecorderStatistics:
        with self._cond:
            return RecorderStatistics(**self._counts, queued=len(self._queue))

    # -- the background thread ------------------------------------------------------------------

    def _count(self, name: str, n: int = 1) -> None:
        with self._cond:
            self._counts[name] += n

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._stopping)
                if self._stopping:
                    return
                entry = self._queue.popleft()
                self._busy = True
            try:
                self._process(entry)
            except Exception:  # noqa: BLE001 - a bug here must not kill the thread
                self._count("failed")
                _log.exception("event recorder failed", controller=self.controller)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _process(self, entry: EventRecord) -> None:
        correlation = self._correlator.observe(entry)
        if correlation is None:
            self._count("spam_filtered")
            _log.debug(
                "event dropped by the spam filter",
                controller=self.controller,
                reason=entry.reason,
                regarding=entry.regarding.get("name"),
            )
            return
        if correlation.combined:
            self._count("combined")
        api = self.options.api
        try:
            if correlation.create:
                self.writer.create(api, self._body(entry, correlation))
                self._count("created")
                return
            try:
                self.writer.patch(
                    api,
                    correlation.name,
                    self._series_patch(correlation),
                    namespace=correlation.namespace,
                    patch_type=PatchType.MERGE,
                )
            except NotFoundError:
                # The Event expired (the apiserver keeps them ~1 h) or was deleted: start it again.
                name = self._correlator.new_name(entry)
                self.writer.create(api, self._body(entry, correlation, name))
                self._correlator.restart(correlation.key, name)
            self._count("updated")
        except Exception as exc:  # noqa: BLE001 - every failure is counted; the reconciler never sees it
            if correlation.create:
                self._correlator.forget(correlation.key)
            self._count("failed")
            _log.warning(
                "event not written",
                controller=self.controller,
                reason=entry.reason,
                regarding=entry.regarding.get("name"),
                error=str(exc),
                error_type=type(exc).__name__,
            )

    def _body(self, entry: EventRecord, c: Correlation, name: str | None = None) -> dict[str, Any]:
        metadata = {"name": name or c.name, "namespace": c.namespace}
        if self.options.api == CORE_EVENTS:
            body: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": metadata,
                "involvedObject": dict(entry.regarding),
                "type": entry.type,
                "reason": entry.reason,
                "action": entry.action,
                "message": c.note,
                "source": {"component": self.controller},
                "reportingComponent": self.controller,
                "reportingInstance": self.instance,
                "firstTimestamp": _time(c.first_wall),
                "lastTimestamp": _time(c.last_wall),
                "count": c.count,
            }
            if entry.related is not None:
                body["related"] = dict(entry.related)
            return body
        body = {
            "apiVersion": EVENTS_V1.api_version,
            "kind": "Event",
            "metadata": metadata,
            "eventTime": _micro_time(c.first_wall),
            "regarding": dict(entry.regarding),
            "type": entry.type,
            "reason": entry.reason,
            "action": entry.action,
            "note": c.note,
            "reportingController": self.controller,
            "reportingInstance": self.instance,
        }
        if entry.related is not None:
            body["related"] = dict(entry.related)
        if c.count > 1:
            body["series"] = {"count": c.count, "lastObservedTime": _micro_time(c.last_wall)}
        return body

    def _series_patch(self, c: Correlation) -> dict[str, Any]:
        if self.options.api == CORE_EVENTS:
            return {"count": c.count, "lastTimestamp": _time(c.last_wall), "message": c.note}
        # events.k8s.io notes are immutable: only the series changes.
        return {"series": {"count": c.count, "lastObservedTime": _micro_time(c.last_wall)}}
