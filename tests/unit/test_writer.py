"""ApiWriter request shapes and error policy, against a scripted fake client (no network, no sleeping)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import orjson
import pytest

from controllers.api import Api
from controllers.circuit import CircuitOptions, CircuitShedError, CircuitState
from controllers.writer import (
    APPLY_PATCH_CONTENT_TYPE,
    ApiWriter,
    PatchType,
    WriterOptions,
    client_config_for_workers,
)
from informers._retry import RetryBudget
from informers.client import Response
from informers.clock import FakeClock
from informers.config import ClientConfig
from informers.errors import (
    AlreadyExistsError,
    ClientClosedError,
    ConflictError,
    InternalServerError,
    MalformedResponseError,
    NotFoundError,
    ServiceUnavailableError,
    TooManyRequestsError,
    TransportError,
)
from informers.resources import Resource

CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", namespaced=True)
WIDGETS = Resource("example.com", "v1", "widgets", "Widget", namespaced=True)
NODES = Resource("", "v1", "nodes", "Node", namespaced=False)

Answer = Response | Exception | Callable[[], Response]


class FakeClient:
    """Records requests; answers from a script (default: echo the body as a 200)."""

    def __init__(self, *answers: Answer, pool_maxsize: int = 25) -> None:
        self.config = ClientConfig(host="https://apiserver.test", pool_maxsize=pool_maxsize)
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
        budget: RetryBudget | None = None,
    ) -> Response:
        if budget is not None:
            assert not budget.retry_in_client  # the writer owns its call's retries
            budget.start_attempt()  # as the real client: refuses a repeat the writer did not spend for
        with self._lock:
            self.requests.append(
                {
                    "method": method,
                    "path": path,
                    "query": dict(query or {}),
                    "body": body,
                    "content_type": content_type,
                    "timeout": timeout,
                }
            )
            answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer()
        if answer is not None:
            return answer
        return ok(body if isinstance(body, dict) else {"kind": "ConfigMap"})


def ok(body: Any, status: int = 200) -> Response:
    return Response(status=status, headers={}, body=orjson.dumps(body))


def query(request: Mapping[str, Any]) -> dict[str, Any]:
    """The query without unset (None) parameters, as the client would encode it."""
    return {k: v for k, v in request["query"].items() if v is not None}


def writer_for(client: FakeClient, **options: Any) -> tuple[ApiWriter, list[float]]:
    slept: list[float] = []
    options.setdefault("backoff_jitter", 0.0)
    writer = ApiWriter(client, WriterOptions(**options), clock=FakeClock(), sleep=slept.append)  # type: ignore[arg-type]
    return writer, slept


def cm(name: str = "cm", namespace: str | None = "ns", rv: str | None = None, **data: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if rv:
        meta["resourceVersion"] = rv
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


# -- request shapes ---------------------------------------------------------------------------


def test_get_create_update_and_status_paths() -> None:
    client = FakeClient()
    writer, _ = writer_for(client, field_manager="widget-controller")
    assert writer.get(CONFIGMAPS, "cm", namespace="ns") == {"kind": "ConfigMap"}
    created = writer.create(CONFIGMAPS, cm(a="1"))
    assert created["data"] == {"a": "1"}
    writer.update(CONFIGMAPS, cm(rv="7"))
    writer.update_status(WIDGETS, {"metadata": {"name": "w", "namespace": "ns", "resourceVersion": "8"}})
    writer.create(NODES, {"metadata": {"name": "n1"}}, dry_run=True)
    shapes = [(r["method"], r["path"], query(r)) for r in client.requests]
    assert shapes == [
        ("GET", "/api/v1/namespaces/ns/configmaps/cm", {}),
        ("POST", "/api/v1/namespaces/ns/configmaps", {"fieldManager": "widget-controller"}),
        ("PUT", "/api/v1/namespaces/ns/configmaps/cm", {"fieldManager": "widget-controller"}),
        ("PUT", "/apis/example.com/v1/namespaces/ns/widgets/w/status", {"fieldManager": "widget-controller"}),
        ("POST", "/api/v1/nodes", {"fieldManager": "widget-controller", "dryRun": "All"}),
    ]
    assert writer.statistics().calls == {"get": 1, "create": 2, "update": 1, "update_status": 1}


def test_namespace_comes_from_the_argument_or_the_object_and_must_agree() -> None:
    client = FakeClient()
    writer, _ = writer_for(client)
    writer.create(CONFIGMAPS, cm(namespace=None), namespace="other")
    assert client.requests[0]["path"] == "/api/v1/namespaces/other/configmaps"
    with pytest.raises(ValueError, match="differs"):
        writer.create(CONFIGMAPS, cm(namespace="ns"), namespace="other")
    with pytest.raises(ValueError, match="namespaced"):
        writer.create(CONFIGMAPS, cm(namespace=None))
    with pytest.raises(ValueError, match="cluster-scoped"):
        writer.create(NODES, {"metadata": {"name": "n1"}}, namespace="ns")
    assert len(client.requests) == 1


def test_update_requires_a_resource_version() -> None:
    writer, _ = writer_for(FakeClient())
    with pytest.raises(ValueError, match="resourceVersion"):
        writer.update(CONFIGMAPS, cm())


def test_patch_content_types_and_bodies() -> None:
    client = FakeClient()
    writer, _ = writer_for(client)
    writer.patch(CONFIGMAPS, "cm", {"data": {"a": "2"}}, namespace="ns")
    writer.patch(
        CONFIGMAPS,
        "cm",
        [{"op": "replace", "path": "/data/a", "value": "3"}],
        namespace="ns",
        patch_type=PatchType.JSON,
    )
    writer.patch(CONFIGMAPS, "cm", {"data": {"a": "4"}}, namespace="ns", patch_type=PatchType.STRATEGIC)
    writer.patch_status(WIDGETS, "w", {"status": {"ready": True}}, namespace="ns")
    assert [(r["path"], r["content_type"]) for r in client.requests] == [
        ("/api/v1/namespaces/ns/configmaps/cm", "application/merge-patch+json"),
        ("/api/v1/namespaces/ns/configmaps/cm", "application/json-patch+json"),
        ("/api/v1/namespaces/ns/configmaps/cm", "application/strategic-merge-patch+json"),
        ("/apis/example.com/v1/namespaces/ns/widgets/w/status", "application/merge-patch+json"),
    ]
    assert client.requests[1]["body"] == [{"op": "replace", "path": "/data/a", "value": "3"}]
    with pytest.raises(ValueError, match="list of operations"):
        writer.patch(CONFIGMAPS, "cm", {"op": "add"}, namespace="ns", patch_type=PatchType.JSON)
    with pytest.raises(ValueError, match="mapping"):
        writer.patch(CONFIGMAPS, "cm", [{"op": "add"}], namespace="ns")


def test_apply_sends_an_apply_patch_with_field_manager_and_force() -> None:
    client = FakeClient()
    writer, _ = writer_for(client)
    with pytest.raises(ValueError, match="field manager"):
        writer.apply(CONFIGMAPS, cm())
    writer.apply(
        CONFIGMAPS, {"metadata": {"name": "cm", "namespace": "ns"}, "data": {"a": "1"}}, field_manager="mgr", force=True
    )
    writer.apply(
        WIDGETS, {"metadata": {"name": "w", "namespace": "ns"}, "status": {}}, field_manager="mgr", subresource="status"
    )
    first, second = client.requests
    assert (first["method"], first["content_type"]) == ("PATCH", APPLY_PATCH_CONTENT_TYPE)
    assert query(first) == {"fieldManager": "mgr", "force": True}
    assert first["body"]["apiVersion"] == "v1" and first["body"]["kind"] == "ConfigMap"  # filled in
    assert second["path"] == "/apis/example.com/v1/namespaces/ns/widgets/w/status" and query(second) == {
        "fieldManager": "mgr"
    }
    assert writer.statistics().calls == {"apply": 1, "apply_status": 1}


def test_delete_sends_preconditions_and_policy_and_treats_not_found_as_gone() -> None:
    client = FakeClient(ok({"kind": "Status", "status": "Success"}), NotFoundError('configmaps "cm" not found'))
    writer, slept = writer_for(client)
    answer = writer.delete(
        CONFIGMAPS,
        "cm",
        namespace="ns",
        uid="u-1",
        resource_version="9",
        propagation_policy="Foreground",
        grace_period_seconds=0,
    )
    assert answer == {"kind": "Status", "status": "Success"}
    assert client.requests[0]["method"] == "DELETE"
    assert client.requests[0]["body"] == {
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "preconditions": {"uid": "u-1", "resourceVersion": "9"},
        "propagationPolicy": "Foreground",
        "gracePeriodSeconds": 0,
    }
    assert writer.delete(CONFIGMAPS, "cm", namespace="ns") is None
    stats = writer.statistics()
    assert stats.deletes_already_gone == 1 and stats.errors == {} and slept == []
    with pytest.raises(ValueError, match="propagation_policy"):
        writer.delete(CONFIGMAPS, "cm", namespace="ns", propagation_policy="Cascade")


# -- error policy -----------------------------------------------------------------------------


def test_conflict_is_raised_typed_and_not_retried() -> None:
    client = FakeClient(ConflictError("the object has been modified"), AlreadyExistsError("exists"))
    writer, slept = writer_for(client)
    with pytest.raises(ConflictError):
        writer.update(CONFIGMAPS, cm(rv="1"))
    with pytest.raises(AlreadyExistsError):
        writer.create(CONFIGMAPS, cm())
    stats = writer.statistics()
    assert stats.conflicts == 1 and stats.already_exists == 1
    assert stats.attempts == 2 and stats.retries == 0 and slept == []
    assert stats.errors == {"ConflictError": 1, "AlreadyExistsError": 1}


def test_an_answer_that_is_not_an_object_is_a_malformed_error() -> None:
    writer, _ = writer_for(FakeClient(*[ok([1, 2]) for _ in range(4)]), retries=0)
    with pytest.raises(MalformedResponseError, match="not a JSON object"):
        writer.get(CONFIGMAPS, "cm", namespace="ns")


def test_get_not_found_is_raised() -> None:
    writer, _ = writer_for(FakeClient(NotFoundError("nope")))
    with pytest.raises(NotFoundError):
        writer.get(CONFIGMAPS, "cm", namespace="ns")


def test_server_errors_are_retried_with_exponential_backoff_then_succeed() -> None:
    client = FakeClient(ServiceUnavailableError("down"), TransportError("read timeout"), InternalServerError("etcd"))
    writer, slept = writer_for(client, retries=3, backoff_initial=0.2, backoff_cap=5.0)
    assert writer.update(CONFIGMAPS, cm(rv="1", a="x"))["data"] == {"a": "x"}
    assert slept == pytest.approx([0.2, 0.4, 0.8])
    stats = writer.statistics()
    assert stats.attempts == 4 and stats.retries == 3 and stats.errors == {}


def test_retries_are_bounded_and_the_last_error_is_raised() -> None:
    client = FakeClient(*[ServiceUnavailableError(f"down {i}") for i in range(5)])
    writer, slept = writer_for(client, retries=2, circuit=CircuitOptions(min_requests=100))
    with pytest.raises(ServiceUnavailableError, match="down 2"):
        writer.patch(CONFIGMAPS, "cm", {"data": {}}, namespace="ns")
    assert len(client.requests) == 3 and len(slept) == 2


def test_the_servers_retry_after_is_the_delay_when_given() -> None:
    client = FakeClient(
        TooManyRequestsError("slow down", retry_after=2.5),
        ServiceUnavailableError("down"),
        ServiceUnavailableError("busy", retry_after=0.0),
    )
    writer, slept = writer_for(client, retries=3, backoff_initial=0.2)
    writer.get(CONFIGMAPS, "cm", namespace="ns")
    assert slept == pytest.approx([2.5, 0.2, 0.0])  # the backoff only fills in where no Retry-After came
    assert len(client.requests) == 4 and writer.statistics().retries == 3


def test_jitter_spreads_delays_within_base_and_twice_base() -> None:
    client = FakeClient(*[ServiceUnavailableError("down") for _ in range(3)])
    writer, slept = writer_for(client, retries=3, backoff_jitter=1.0, backoff_initial=0.5)
    writer.get(CONFIGMAPS, "cm", namespace="ns")
    for delay, base in zip(slept, [0.5, 1.0, 2.0], strict=True):
        assert base <= delay < 2 * base


def test_writes_that_could_repeat_are_not_retried_after_an_unknown_outcome() -> None:
    generated = {"metadata": {"generateName": "job-", "namespace": "ns"}}
    untested = [{"op": "add", "path": "/metadata/finalizers/-", "value": "x"}]
    tested = [{"op": "test", "path": "/metadata/resourceVersion", "value": "5"}, *untested]
    client = FakeClient(
        InternalServerError("etcd timeout"),
        TransportError("dropped"),
        TransportError("dropped"),
        ok({"kind": "ConfigMap"}),
        TooManyRequestsError("slow down"),
        ok({"kind": "Job"}),
    )
    writer, slept = writer_for(client)
    with pytest.raises(InternalServerError):
        writer.create(CONFIGMAPS, generated)
    with pytest.raises(TransportError):
        writer.patch(CONFIGMAPS, "cm", untested, namespace="ns", patch_type=PatchType.JSON)
    writer.patch(CONFIGMAPS, "cm", tested, namespace="ns", patch_type=PatchType.JSON)  # retried once
    writer.create(CONFIGMAPS, generated)  # a 429 was refused before any work: retried
    assert len(slept) == 2 and len(client.requests) == 6


def test_an_open_circuit_sheds_without_sending_and_is_not_retried() -> None:
    client = FakeClient(*[ServiceUnavailableError("down") for _ in range(4)])
    writer, slept = writer_for(client, retries=0, circuit=CircuitOptions(min_requests=4, cooldown=10))
    for _ in range(4):
        with pytest.raises(ServiceUnavailableError):
            writer.get(CONFIGMAPS, "cm", namespace="ns")
    with pytest.raises(CircuitShedError) as shed:
        writer.create(CONFIGMAPS, cm())
    assert shed.value.group == "v1" and len(client.requests) == 4 and slept == []
    stats = writer.statistics()
    assert stats.shed == 1 and stats.circuit.groups["v1"].state is CircuitState.OPEN
    writer.get(WIDGETS, "w", namespace="ns")  # another API group is unaffected


def test_the_circuit_opens_during_retries_and_stops_them() -> None:
    client = FakeClient(*[ServiceUnavailableError("down") for _ in range(10)])
    writer, slept = writer_for(client, retries=5, circuit=CircuitOptions(min_requests=2))
    with pytest.raises(ServiceUnavailableError):  # the real error, not a shed after a pointless sleep
        writer.update(CONFIGMAPS, cm(rv="1"))
    assert len(client.requests) == 2 and len(slept) == 1
    with pytest.raises(CircuitShedError):
        writer.update(CONFIGMAPS, cm(rv="1"))
    assert len(client.requests) == 2


def test_not_found_and_conflicts_keep_the_circuit_closed() -> None:
    client = FakeClient(*[NotFoundError("nope") for _ in range(10)])
    writer, _ = writer_for(client, circuit=CircuitOptions(min_requests=2))
    for _ in range(10):
        assert writer.delete(CONFIGMAPS, "cm", namespace="ns") is None
    assert writer.statistics().circuit.groups["v1"].state is CircuitState.CLOSED


# -- in-flight cap, close, pool sizing, async -------------------------------------------------


def test_requests_beyond_max_in_flight_wait_for_a_slot() -> None:
    entered, release = threading.Event(), threading.Event()

    def blocking() -> Response:
        entered.set()
        assert release.wait(10)
        return ok({"kind": "ConfigMap"})

    client = FakeClient(blocking)
    writer, _ = writer_for(client, max_in_flight=1)
    results: list[Any] = []
    first = threading.Thread(target=lambda: results.append(writer.get(CONFIGMAPS, "a", namespace="ns")))
    first.start()
    assert entered.wait(10)
    second = threading.Thread(target=lambda: results.append(writer.get(CONFIGMAPS, "b", namespace="ns")))
    second.start()
    deadline = threading.Event()
    while writer.statistics().waiting != 1:  # the second caller is queued on our side
        assert not deadline.wait(0.01) and second.is_alive()
    assert len(client.requests) == 1 and writer.statistics().in_flight == 1
    release.set()
    first.join(10)
    second.join(10)
    stats = writer.statistics()
    assert len(results) == 2 and stats.peak_in_flight == 1 and stats.in_flight == 0 and stats.max_in_flight == 1


def test_max_in_flight_defaults_to_the_client_pool_size() -> None:
    writer, _ = writer_for(FakeClient(pool_maxsize=7))
    assert writer.max_in_flight == 7 and writer.statistics().max_in_flight == 7


def test_close_refuses_new_calls_and_interrupts_a_retry() -> None:
    client = FakeClient(ServiceUnavailableError("down"))
    writer, _ = writer_for(client)
    writer._sleep_fn = lambda _: writer.close()  # closed while waiting to retry
    with pytest.raises(ClientClosedError, match="closed while retrying"):
        writer.get(CONFIGMAPS, "cm", namespace="ns")
    assert writer.closed
    with pytest.raises(ClientClosedError, match="closed"):
        writer.get(CONFIGMAPS, "cm", namespace="ns")
    assert len(client.requests) == 1


def test_a_closed_client_is_not_retried_and_does_not_count_against_the_circuit() -> None:
    client = FakeClient(*[ClientClosedError("the ApiClient is closed") for _ in range(3)])
    writer, slept = writer_for(client, retries=3, circuit=CircuitOptions(min_requests=1))
    with pytest.raises(ClientClosedError):
        writer.get(CONFIGMAPS, "cm", namespace="ns")
    assert len(client.requests) == 1 and slept == []
    group = writer.statistics().circuit.groups["v1"]
    assert (group.failures, group.successes) == (0, 0)  # says nothing about the server


def test_client_config_for_workers_sizes_the_pool_and_never_shrinks_it() -> None:
    config = ClientConfig(host="https://apiserver.test", pool_maxsize=25)
    assert client_config_for_workers(config, 40, watches=6).pool_maxsize == 48
    assert client_config_for_workers(config, 4).pool_maxsize == 25
    assert client_config_for_workers(config, 4).qps == config.qps
    with pytest.raises(ValueError):
        client_config_for_workers(config, 0)


def test_options_are_validated() -> None:
    for bad in ({"retries": -1}, {"max_in_flight": 0}, {"timeout": 0}, {"backoff_initial": 10, "backoff_cap": 1}):
        with pytest.raises(ValueError):
            WriterOptions(**bad)  # type: ignore[arg-type]


def test_the_async_api_runs_writer_calls_in_a_thread() -> None:
    client = FakeClient(ok({"kind": "ConfigMap", "metadata": {"name": "cm"}}), NotFoundError("gone"))
    writer, _ = writer_for(client)
    threads: list[str] = []
    original = client.request

    def spy(*args: Any, **kwargs: Any) -> Response:
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    client.request = spy  # type: ignore[method-assign]

    async def main() -> tuple[Any, Any]:
        api = Api(writer, None, CONFIGMAPS, namespace="ns")  # type: ignore[arg-type]  # resolved already
        got = await api.get("cm")
        gone = await api.delete("cm")
        return got, gone

    got, gone = anyio.run(main)
    assert got["metadata"]["name"] == "cm" and gone is None
    assert threads and all(name != threading.main_thread().name for name in threads)
