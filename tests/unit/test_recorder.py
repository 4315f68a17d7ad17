"""Event aggregation, spam filter and series maths (fake clock), and the recorder's writes and failure handling."""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping
from typing import Any

import pytest

from controllers.recorder import (
    COMBINED_PREFIX,
    CORE_EVENTS,
    EVENTS_V1,
    EventCorrelator,
    EventRecord,
    EventRecorder,
    RecorderOptions,
    object_reference,
)
from informers.clock import FakeClock
from informers.errors import NotFoundError, ServiceUnavailableError
from informers.resources import Resource

from .conftest import pod as make_pod

CONTROLLER = "example.com/widgets"
PODS = Resource("", "v1", "pods", "Pod", namespaced=True)


pod = functools.partial(make_pod, ns="ns", uid="u-1", spec=None)  # this module's pods: ns/p, uid u-1


def event(
    clock: FakeClock,
    note: str = "synced",
    obj: dict[str, Any] | None = None,
    reason: str = "Synced",
    event_type: str = "Normal",
) -> EventRecord:
    return EventRecord(
        regarding=object_reference(obj or pod()),
        related=None,
        type=event_type,
        reason=reason,
        action=reason,
        note=note,
        monotonic=clock.monotonic(),
        wall=clock.time(),
    )


# -- correlator maths -------------------------------------------------------------------------


def test_identical_events_form_a_series_until_the_window_passes() -> None:
    clock = FakeClock()
    correlator = EventCorrelator(CONTROLLER, RecorderOptions(series_window=360), clock=clock)
    first = correlator.observe(event(clock))
    assert first is not None and first.create and first.count == 1 and first.namespace == "ns"
    counts = []
    for _ in range(3):
        clock.advance(100)  # each repeat within 360 s of the previous one
        c = correlator.observe(event(clock))
        assert c is not None and not c.create and c.name == first.name
        counts.append(c.count)
    assert counts == [2, 3, 4]
    clock.advance(361)
    fresh = correlator.observe(event(clock))
    assert fresh is not None and fresh.create and fresh.count == 1 and fresh.name != first.name


def test_a_new_resource_version_of_the_same_object_is_still_the_same_event() -> None:
    clock = FakeClock()
    correlator = EventCorrelator(CONTROLLER, clock=clock)
    correlator.observe(event(clock, obj=pod(rv="1")))
    again = correlator.observe(event(clock, obj=pod(rv="2")))
    assert again is not None and not again.create and again.count == 2


def test_ten_similar_events_with_different_notes_are_combined() -> None:
    clock = FakeClock()
    correlator = EventCorrelator(CONTROLLER, clock=clock)
    results = []
    for i in range(12):
        clock.advance(10)
        results.append(correlator.observe(event(clock, note=f"replica {i} failed", reason="Failed")))
    assert all(r is not None for r in results)
    assert [r.combined for r in results] == [False] * 9 + [True] * 3  # type: ignore[union-attr]
    assert all(r.create for r in results[:10])  # type: ignore[union-attr]
    tenth, eleventh, twelfth = results[9], results[10], results[11]
    assert tenth.note == COMBINED_PREFIX + "replica 9 failed"  # type: ignore[union-attr]
    # Further new notes update the one combined Event instead of creating more.
    assert not eleventh.create and eleventh.name == tenth.name and eleventh.count == 2  # type: ignore[union-attr]
    assert twelfth.count == 3  # type: ignore[union-attr]


def test_similar_events_far_apart_are_not_combined() -> None:
    clock = FakeClock()
    correlator = EventCorrelator(CONTROLLER, clock=clock)
    results = []
    for i in range(12):
        clock.advance(601)  # each more than the aggregation window after the previous
        results.append(correlator.observe(event(clock, note=f"attempt {i}")))
    assert not any(r.combined for r in results if r is not None)


def test_other_reasons_or_objects_are_not_similar() -> None:
    clock = FakeClock()
    correlator = EventCorrelator(CONTROLLER, clock=clock)
    results = [
        correlator.observe(
            event(clock, note=f"n{i}", reason=f"Reason{i % 2}", obj=pod(name=f"p{i // 2}", uid=f"u{i // 2}"))
        )
        for i in range(20)
    ]
    assert not any(r.combined for r in results if r is not None)


def test_spam_filter_allows_a_burst_of_25_per_object_then_one_per_300_seconds() -> None:
    clock = FakeClock()
    correlator = EventCorrelator(CONTROLLER, clock=clock)
    passed = [correlator.observe(event(clock, reason=f"R{i}")) is not None for i in range(30)]
    assert passed == [True] * 25 + [False] * 5
    other = pod(name="q", uid="u-2")
    assert correlator.observe(event(clock, obj=other)) is not None  # its own bucket
    clock.advance(299)
    assert correlator.observe(event(clock, reason="Later")) is None
    clock.advance(1)
    assert correlator.observe(event(clock, reason="Later")) is not None
    assert correlator.observe(event(clock, reason="Later2")) is None


def test_event_names_follow_the_object_and_stay_unique_at_the_same_instant() -> None:
    clock = FakeClock()
    correlator = EventCorrelator(CONTROLLER, clock=clock)
    names = {correlator.observe(event(clock, reason=f"R{i}")).name for i in range(5)}  # type: ignore[union-attr]
    assert len(names) == 5 and all(n.startswith("p.") for n in names)
    long_name = "x" * 253
    c = correlator.observe(event(clock, obj=pod(name=long_name, uid="u-9")))
    assert c is not None and len(c.name) == 253


def test_caches_are_bounded() -> None:
    clock = FakeClock()
    correlator = EventCorrelator(CONTROLLER, RecorderOptions(cache_size=3), clock=clock)
    for i in range(10):
        correlator.observe(event(clock, obj=pod(name=f"p{i}", uid=f"u{i}")))
    assert len(correlator._series) == 3 and len(correlator._spam) == 3 and len(correlator._aggregates) == 3


def test_object_reference_from_objects_refs_and_list_items() -> None:
    assert object_reference(pod()) == {
        "apiVersion": "v1",
        "kind": "Pod",
        "namespace": "ns",
        "name": "p",
        "uid": "u-1",
        "resourceVersion": "1",
    }
    item = {"metadata": {"name": "p", "namespace": "ns"}}  # list items carry no kind
    assert object_reference(item, PODS)["kind"] == "Pod"
    assert object_reference({"kind": "Node", "name": "n1"}) == {"kind": "Node", "name": "n1"}
    with pytest.raises(ValueError):
        object_reference(item)


# -- the recorder -----------------------------------------------------------------------------


class FakeWriter:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Resource, Any]] = []
        self.fail_next: list[Exception] = []
        self.gate: threading.Event | None = None

    def _maybe_fail(self) -> None:
        if self.gate is not None:
            assert self.gate.wait(10)
        if self.fail_next:
            raise self.fail_next.pop(0)

    def create(self, resource: Resource, obj: Mapping[str, Any], **_: Any) -> dict[str, Any]:
        self.calls.append(("create", resource, obj))
        self._maybe_fail()
        return dict(obj)

    def patch(
        self, resource: Resource, name: str, patch: Mapping[str, Any], *, namespace: str | None = None, **_: Any
    ) -> dict[str, Any]:
        self.calls.append(("patch", resource, (name, namespace, patch)))
        self._maybe_fail()
        return {}


def recorder_for(writer: FakeWriter, clock: FakeClock, **options: Any) -> EventRecorder:
    return EventRecorder(
        writer,
        CONTROLLER,
        instance="widgets-0",
        options=RecorderOptions(**options),  # type: ignore[arg-type]
        clock=clock,
    )


def test_records_an_events_v1_event_then_a_series_update() -> None:
    clock, writer = FakeClock(wall=1_700_000_000.5), FakeWriter()
    recorder = recorder_for(writer, clock)
    try:
        assert recorder.normal(pod(), "Synced", "all replicas ready", action="Reconcile")
        clock.advance(2)
        assert recorder.normal(pod(), "Synced", "all replicas ready", action="Reconcile")
        assert recorder.flush(10)
    finally:
        recorder.close()
    (verb, resource, body), (verb2, _, (name, namespace, patch)) = writer.calls
    assert verb == "create" and resource == EVENTS_V1
    assert body == {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": body["metadata"]["name"], "namespace": "ns"},
        "eventTime": "2023-11-14T22:13:20.500000Z",
        "regarding": {
            "apiVersion": "v1",
            "kind": "Pod",
            "namespace": "ns",
            "name": "p",
            "uid": "u-1",
            "resourceVersion": "1",
        },
        "type": "Normal",
        "reason": "Synced",
        "action": "Reconcile",
        "note": "all replicas ready",
        "reportingController": CONTROLLER,
        "reportingInstance": "widgets-0",
    }
    assert verb2 == "patch" and name == body["metadata"]["name"] and namespace == "ns"
    assert patch == {"series": {"count": 2, "lastObservedTime": "2023-11-14T22:13:22.500000Z"}}
    stats = recorder.statistics()
    assert (stats.recorded, stats.created, stats.updated, stats.failed, stats.queued) == (2, 1, 1, 0, 0)


def test_core_v1_events_use_count_and_timestamps() -> None:
    clock, writer = FakeClock(wall=1_700_000_000.0), FakeWriter()
    recorder = recorder_for(writer, clock, api=CORE_EVENTS)
    try:
        cluster_scoped = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "uid": "u-n"}}
        recorder.warning(cluster_scoped, "Unhealthy", "disk full")
        clock.advance(60)
        recorder.warning(cluster_scoped, "Unhealthy", "disk full")
        assert recorder.flush(10)
    finally:
        recorder.close()
    (_, resource, body), (_, _, (_, namespace, patch)) = writer.calls
    assert resource == CORE_EVENTS and body["metadata"]["namespace"] == "default" and namespace == "default"
    assert body["involvedObject"]["name"] == "n1" and body["message"] == "disk full" and body["count"] == 1
    assert body["source"] == {"component": CONTROLLER} and body["action"] == "Unhealthy"
    assert body["firstTimestamp"] == body["lastTimestamp"] == "2023-11-14T22:13:20Z"
    assert patch == {"count": 2, "lastTimestamp": "2023-11-14T22:14:20Z", "message": "disk full"}


def test_recording_never_raises_on_bad_input_or_failed_writes() -> None:
    clock, writer = FakeClock(), FakeWriter()
    writer.fail_next = [ServiceUnavailableError("down")]
    recorder = recorder_for(writer, clock)
    try:
        assert not recorder.record(pod(), "Error", "Bad", "not a valid type")
        assert not recorder.record({"metadata": {"name": "no-kind"}}, "Normal", "R", "n")
        assert recorder.normal(pod(), "Synced", "first")  # its write fails
        assert recorder.normal(pod(), "Synced", "first")  # so this one creates again
        assert recorder.flush(10)
    finally:
        recorder.close()
    assert [verb for verb, _, _ in writer.calls] == ["create", "create"]
    stats = recorder.statistics()
    assert (stats.invalid, stats.failed, stats.created) == (2, 1, 1)


def test_an_expired_event_is_created_again_with_its_count() -> None:
    clock, writer = FakeClock(), FakeWriter()
    recorder = recorder_for(writer, clock)
    try:
        recorder.normal(pod(), "Synced", "ok")
        assert recorder.flush(10)
        writer.fail_next = [NotFoundError('events "p.1" not found')]
        recorder.normal(pod(), "Synced", "ok")
        recorder.normal(pod(), "Synced", "ok")
        assert recorder.flush(10)
    finally:
        recorder.close()
    verbs = [verb for verb, _, _ in writer.calls]
    assert verbs == ["create", "patch", "create", "patch"]
    recreated = writer.calls[2][2]
    assert recreated["series"]["count"] == 2 and recreated["metadata"]["name"] != writer.calls[0][2]["metadata"]["name"]
    assert writer.calls[3][2][0] == recreated["metadata"]["name"]  # later repeats patch the new one
    assert recorder.statistics().updated == 2


def test_a_full_queue_drops_instead_of_blocking_and_close_drops_later_records() -> None:
    clock, writer = FakeClock(), FakeWriter()
    writer.gate = threading.Event()
    recorder = recorder_for(writer, clock, queue_size=2)
    try:
        recorder.normal(pod(), "R0", "n")  # taken by the thread, which blocks in the writer
        while not writer.calls:
            threading.Event().wait(0.01)
        accepted = [recorder.normal(pod(), f"R{i}", "n") for i in range(1, 5)]
        assert accepted == [True, True, False, False]
        assert not recorder.flush(0)
        writer.gate.set()
        assert recorder.flush(10)
    finally:
        recorder.close()
    assert not recorder.normal(pod(), "Late", "n")
    stats = recorder.statistics()
    assert (stats.recorded, stats.created, stats.dropped) == (3, 3, 3)


def test_notes_are_cut_to_the_api_limit_and_the_controller_name_is_checked() -> None:
    clock, writer = FakeClock(), FakeWriter()
    recorder = recorder_for(writer, clock)
    try:
        recorder.normal(pod(), "Synced", "é" * 1000)
        assert recorder.flush(10)
    finally:
        recorder.close()
    assert len(writer.calls[0][2]["note"].encode()) <= 1024
    with pytest.raises(ValueError, match="qualified name"):
        EventRecorder(writer, "not a name!")  # type: ignore[arg-type]
