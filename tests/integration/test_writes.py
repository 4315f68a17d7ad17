"""ApiWriter, finalizers, the event recorder and the circuit breaker against a real kube-apiserver."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from controllers.circuit import CircuitOptions, CircuitShedError, CircuitState
from controllers.finalizers import FinalizerStep, ensure_finalizer, has_finalizer, reconcile_finalizer, remove_finalizer
from controllers.recorder import COMBINED_PREFIX, CORE_EVENTS, EventRecorder, RecorderOptions
from controllers.writer import ApiWriter, PatchType, WriterOptions
from informers.client import ApiClient
from informers.config import load_config
from informers.errors import ConflictError, NotFoundError, TransportError
from informers.resources import Resource
from informers.testing import ControlPlane, FaultProxy
from informers.testing.controlplane import ControlPlaneError

pytestmark = pytest.mark.integration

CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", namespaced=True)
NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
FINALIZER = "informerd.test/cleanup"


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def writer(control_plane: ControlPlane) -> Iterator[ApiWriter]:
    client = ApiClient(load_config(str(control_plane.admin_kubeconfig)))
    api = ApiWriter(client, WriterOptions(field_manager="informerd-tests"))
    try:
        yield api
    finally:
        api.close()
        client.close()


def test_configmap_round_trip_create_get_update_patch_apply_delete(writer: ApiWriter, namespace: str) -> None:
    created = writer.create(CONFIGMAPS, configmap("round-trip", a="1"), namespace=namespace)
    assert created["metadata"]["uid"] and created["data"] == {"a": "1"}
    got = writer.get(CONFIGMAPS, "round-trip", namespace=namespace)
    assert got["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]

    got["data"]["b"] = "2"
    updated = writer.update(CONFIGMAPS, got)
    assert updated["data"] == {"a": "1", "b": "2"}
    assert updated["metadata"]["resourceVersion"] != got["metadata"]["resourceVersion"]

    merged = writer.patch(CONFIGMAPS, "round-trip", {"data": {"a": None, "c": "3"}}, namespace=namespace)
    assert merged["data"] == {"b": "2", "c": "3"}
    json_patched = writer.patch(
        CONFIGMAPS,
        "round-trip",
        [{"op": "replace", "path": "/data/b", "value": "20"}],
        namespace=namespace,
        patch_type=PatchType.JSON,
    )
    assert json_patched["data"]["b"] == "20"
    strategic = writer.patch(
        CONFIGMAPS,
        "round-trip",
        {"metadata": {"labels": {"tier": "x"}}},
        namespace=namespace,
        patch_type=PatchType.STRATEGIC,
    )
    assert strategic["metadata"]["labels"] == {"tier": "x"}

    applied = writer.apply(
        CONFIGMAPS, {"metadata": {"name": "round-trip", "namespace": namespace}, "data": {"owned": "yes"}}, force=True
    )
    assert applied["data"]["owned"] == "yes"
    assert any(
        m.get("manager") == "informerd-tests" and m.get("operation") == "Apply"
        for m in applied["metadata"]["managedFields"]
    )

    deleted = writer.delete(CONFIGMAPS, "round-trip", namespace=namespace, uid=created["metadata"]["uid"])
    assert deleted is not None
    with pytest.raises(NotFoundError):
        writer.get(CONFIGMAPS, "round-trip", namespace=namespace)
    stats = writer.statistics()
    assert stats.errors == {"NotFoundError": 1} and stats.circuit.groups["v1"].state is CircuitState.CLOSED


def test_update_with_a_stale_resource_version_raises_conflict(writer: ApiWriter, namespace: str) -> None:
    stale = writer.create(CONFIGMAPS, configmap("stale", v="1"), namespace=namespace)
    writer.patch(CONFIGMAPS, "stale", {"data": {"v": "2"}}, namespace=namespace)
    stale["data"]["v"] = "3"
    with pytest.raises(ConflictError):
        writer.update(CONFIGMAPS, stale)
    # A merge patch carrying the old resourceVersion is refused the same way (finalizers rely on it).
    with pytest.raises(ConflictError):
        writer.patch(
            CONFIGMAPS,
            "stale",
            {"metadata": {"resourceVersion": stale["metadata"]["resourceVersion"]}, "data": {"v": "4"}},
            namespace=namespace,
        )
    assert writer.get(CONFIGMAPS, "stale", namespace=namespace)["data"] == {"v": "2"}
    assert writer.statistics().conflicts == 2


def test_delete_of_a_missing_object_returns_none(writer: ApiWriter, namespace: str) -> None:
    assert writer.delete(CONFIGMAPS, "never-existed", namespace=namespace) is None
    assert writer.statistics().deletes_already_gone == 1


def test_a_delete_precondition_that_no_longer_holds_raises_conflict(writer: ApiWriter, namespace: str) -> None:
    writer.create(CONFIGMAPS, configmap("guarded"), namespace=namespace)
    with pytest.raises(ConflictError):
        writer.delete(CONFIGMAPS, "guarded", namespace=namespace, uid="00000000-0000-0000-0000-000000000000")
    assert writer.get(CONFIGMAPS, "guarded", namespace=namespace)


def test_server_side_apply_twice_creates_one_object_and_the_second_is_a_no_op(
    writer: ApiWriter, namespace: str
) -> None:
    intent = {"metadata": {"name": "applied", "namespace": namespace, "labels": {"app": "w"}}, "data": {"k": "v"}}
    first = writer.apply(CONFIGMAPS, intent)
    second = writer.apply(CONFIGMAPS, intent)
    assert second["metadata"]["uid"] == first["metadata"]["uid"]
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    listed = writer.client.get_json(CONFIGMAPS.path(namespace))["items"]
    assert [o["metadata"]["name"] for o in listed] == ["applied"]


@pytest.fixture
def widgets(control_plane: ControlPlane) -> Iterator[Resource]:
    """A namespaced CRD with a status subresource, unique to this test, served before it returns."""
    group = f"w{uuid.uuid4().hex[:8]}.informerd.test"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
                                "status": {
                                    "type": "object",
                                    "properties": {"ready": {"type": "boolean"}, "observedSize": {"type": "integer"}},
                                },
                            },
                        }
                    },
                }
            ],
        },
    }
    control_plane.request_json("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    resource = Resource(group, "v1", "widgets", "Widget", namespaced=True)

    def served() -> bool:
        try:
            control_plane.request_json("GET", resource.path("default"))
        except ControlPlaneError:
            return False
        return True

    wait_for(served, 30, f"CRD {group} to be served")
    yield resource
    control_plane.request("DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}")


def test_update_status_changes_status_but_not_spec(writer: ApiWriter, namespace: str, widgets: Resource) -> None:
    created = writer.create(
        widgets,
        {"apiVersion": widgets.api_version, "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}},
        namespace=namespace,
    )
    assert "status" not in created
    attempt = dict(created, spec={"size": 99}, status={"ready": True, "observedSize": 3})
    after = writer.update_status(widgets, attempt)
    assert after["status"] == {"ready": True, "observedSize": 3}
    assert after["spec"] == {"size": 3}  # the status subresource ignores spec changes
    assert after["metadata"]["generation"] == created["metadata"]["generation"]

    patched = writer.patch_status(widgets, "w1", {"status": {"ready": False}}, namespace=namespace)
    assert patched["status"] == {"ready": False, "observedSize": 3} and patched["spec"] == {"size": 3}
    stored = writer.get(widgets, "w1", namespace=namespace)
    assert stored["status"]["ready"] is False and stored["spec"] == {"size": 3}


def test_finalizer_holds_a_deleted_object_until_removed(writer: ApiWriter, namespace: str) -> None:
    obj = writer.create(CONFIGMAPS, configmap("guarded-by-finalizer"), namespace=namespace)
    with_finalizer = ensure_finalizer(writer, CONFIGMAPS, obj, FINALIZER)
    assert has_finalizer(with_finalizer, FINALIZER)
    again = ensure_finalizer(writer, CONFIGMAPS, with_finalizer, FINALIZER)  # idempotent: no write
    assert again["metadata"]["resourceVersion"] == with_finalizer["metadata"]["resourceVersion"]
    with pytest.raises(ConflictError):  # conflict-safe: a stale read is refused, not merged blindly
        ensure_finalizer(writer, CONFIGMAPS, obj, "informerd.test/other")

    deleting = writer.delete(CONFIGMAPS, "guarded-by-finalizer", namespace=namespace)
    assert deleting is not None and deleting["metadata"].get("deletionTimestamp")
    current = writer.get(CONFIGMAPS, "guarded-by-finalizer", namespace=namespace)
    assert current["metadata"]["deletionTimestamp"] and has_finalizer(current, FINALIZER)

    cleaned: list[str] = []
    result = reconcile_finalizer(
        writer, CONFIGMAPS, current, FINALIZER, lambda o: cleaned.append(o["metadata"]["name"])
    )
    assert result.step is FinalizerStep.REMOVE and cleaned == ["guarded-by-finalizer"]
    with pytest.raises(NotFoundError):
        writer.get(CONFIGMAPS, "guarded-by-finalizer", namespace=namespace)
    assert remove_finalizer(writer, CONFIGMAPS, current, FINALIZER) is None  # already gone


def test_finalizer_is_added_before_side_effects_and_others_are_kept(writer: ApiWriter, namespace: str) -> None:
    obj = writer.create(
        CONFIGMAPS,
        dict(configmap("shared"), metadata={"name": "shared", "finalizers": ["other.io/keep"]}),
        namespace=namespace,
    )
    result = reconcile_finalizer(writer, CONFIGMAPS, obj, FINALIZER, lambda _: None)
    assert result.step is FinalizerStep.ADD and result.proceed
    assert writer.get(CONFIGMAPS, "shared", namespace=namespace)["metadata"]["finalizers"] == [
        "other.io/keep",
        FINALIZER,
    ]
    stored = writer.get(CONFIGMAPS, "shared", namespace=namespace)
    remove_finalizer(writer, CONFIGMAPS, stored, FINALIZER)
    remove_finalizer(writer, CONFIGMAPS, writer.get(CONFIGMAPS, "shared", namespace=namespace), "other.io/keep")
    assert "finalizers" not in writer.get(CONFIGMAPS, "shared", namespace=namespace)["metadata"]


def _events(writer: ApiWriter, path: str) -> list[dict[str, Any]]:
    return list(writer.client.get_json(path)["items"])


def test_recorder_writes_an_event_and_aggregates_repeats_into_one(writer: ApiWriter, namespace: str) -> None:
    obj = writer.create(CONFIGMAPS, configmap("observed"), namespace=namespace)
    recorder = EventRecorder(writer, "informerd.test/widgets", instance="test-0")
    try:
        for _ in range(3):
            assert recorder.normal(obj, "Synced", "configmap is in sync", action="Reconcile")
        assert recorder.warning(obj, "Degraded", "a different event", action="Reconcile")
        assert recorder.flush(30)
    finally:
        recorder.close()
    events = _events(writer, f"/apis/events.k8s.io/v1/namespaces/{namespace}/events")
    by_reason = {e["reason"]: e for e in events}
    assert len(events) == 2 and set(by_reason) == {"Synced", "Degraded"}
    synced = by_reason["Synced"]
    assert synced["series"]["count"] == 3 and synced["note"] == "configmap is in sync"
    assert synced["regarding"]["uid"] == obj["metadata"]["uid"] and synced["type"] == "Normal"
    assert synced["reportingController"] == "informerd.test/widgets" and synced["reportingInstance"] == "test-0"
    assert "series" not in by_reason["Degraded"]
    stats = recorder.statistics()
    assert (stats.created, stats.updated, stats.failed) == (2, 2, 0)


def test_recorder_combines_similar_events_and_core_v1_counts(writer: ApiWriter, namespace: str) -> None:
    obj = writer.create(CONFIGMAPS, configmap("noisy"), namespace=namespace)
    recorder = EventRecorder(writer, "informerd.test/widgets", options=RecorderOptions(api=CORE_EVENTS))
    try:
        for i in range(12):
            recorder.warning(obj, "SyncFailed", f"attempt {i} failed")
        assert recorder.flush(30)
    finally:
        recorder.close()
    events = _events(writer, f"/api/v1/namespaces/{namespace}/events")
    combined = [e for e in events if e["message"].startswith(COMBINED_PREFIX)]
    assert len(events) == 10 and len(combined) == 1
    assert combined[0]["count"] == 3 and combined[0]["message"] == COMBINED_PREFIX + "attempt 11 failed"
    assert combined[0]["involvedObject"]["name"] == "noisy" and combined[0]["source"]["component"]


def test_circuit_opens_on_a_refusing_apiserver_sheds_then_half_opens_and_closes(
    control_plane: ControlPlane, fault_proxy: FaultProxy, namespace: str
) -> None:
    config = load_config(
        str(control_plane.kubeconfig(server=fault_proxy.url)),
        connection_retries=0,
        connect_timeout=2.0,
        read_timeout=5.0,
    )
    client = ApiClient(config)
    writer = ApiWriter(client, WriterOptions(retries=0, circuit=CircuitOptions(min_requests=3, cooldown=1.0)))
    try:
        assert writer.get(NAMESPACES, namespace)["metadata"]["name"] == namespace
        fault_proxy.refuse()
        fault_proxy.cut()  # drop the pooled keep-alive connection too
        failures = 0
        while writer.breaker.state("v1") is CircuitState.CLOSED:
            with pytest.raises(TransportError):
                writer.get(NAMESPACES, namespace)
            failures += 1
            assert failures <= 3
        assert failures == 2  # 2 of 3 requests failed: over 50 % with the minimum of 3
        refused = fault_proxy.statistics().refused
        with pytest.raises(CircuitShedError):
            writer.get(NAMESPACES, namespace)
        assert fault_proxy.statistics().refused == refused  # shed: nothing reached the network

        fault_proxy.pass_through()
        wait_for(lambda: writer.breaker.state("v1") is CircuitState.HALF_OPEN, 10, "the cool-down to pass")
        assert writer.get(NAMESPACES, namespace)["metadata"]["name"] == namespace  # the probe
        assert writer.breaker.state("v1") is CircuitState.CLOSED
        stats = writer.statistics().circuit.groups["v1"]
        assert stats.opened == 1 and stats.shed == 1 and stats.failures == 2
    finally:
        writer.close()
        client.close()
