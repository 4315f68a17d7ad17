"""ApiClient requests against a real local HTTP server: errors, retries, throttling, timeouts."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest

from informers.client import ApiClient, Response
from informers.clock import FakeClock
from informers.config import ClientConfig
from informers.errors import (
    AlreadyExistsError,
    ClientClosedError,
    ConnectError,
    InformerdError,
    InternalServerError,
    MalformedResponseError,
    NotFoundError,
    ServiceUnavailableError,
    TooManyRequestsError,
    TransportError,
)

from ._local_http import Handler, LocalServer


@pytest.fixture
def server() -> Iterator[LocalServer]:
    srv = LocalServer()
    yield srv
    srv.close()


class Sleeper:
    """Records the waits the client asks for and moves a fake clock instead of sleeping."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)


def make_client(server: LocalServer, **options: object) -> tuple[ApiClient, Sleeper]:
    clock = FakeClock()
    sleeper = Sleeper(clock)
    options.setdefault("qps", -1.0)
    config = ClientConfig(host=server.url, **options)  # type: ignore[arg-type]
    return ApiClient(config, clock=clock, sleep=sleeper), sleeper


STATUS_404 = {
    "kind": "Status",
    "apiVersion": "v1",
    "status": "Failure",
    "reason": "NotFound",
    "message": 'pods "web-0" not found',
    "code": 404,
    "details": {"name": "web-0", "kind": "pods"},
}


def test_success_returns_status_headers_body_and_decodes_json(server: LocalServer) -> None:
    server.json("/api/v1/namespaces/default/pods", {"kind": "PodList", "items": [{"a": 1}]})
    client, _ = make_client(server, token="s3cret")
    resp = client.request(
        "GET",
        "/api/v1/namespaces/default/pods",
        query={"limit": 500, "watch": False, "labelSelector": "app=web,tier!=db"},
    )
    assert isinstance(resp, Response)
    assert resp.status == 200
    assert resp.headers["content-type"] == "application/json"
    assert resp.json() == {"kind": "PodList", "items": [{"a": 1}]}
    (seen,) = server.requests
    assert seen.query == {"limit": ["500"], "watch": ["false"], "labelSelector": ["app=web,tier!=db"]}
    assert seen.headers["Authorization"] == "Bearer s3cret"
    assert seen.headers["User-Agent"].startswith("informerd/")
    assert client.statistics().requests == {("GET", "2xx"): 1}
    client.close()


def test_body_is_encoded_and_content_type_sent(server: LocalServer) -> None:
    server.route("/api/v1/namespaces")(lambda h: h.send_json(201, {"ok": True}))
    client, _ = make_client(server)
    client.request("POST", "/api/v1/namespaces", body={"metadata": {"name": "x"}})
    client.request("POST", "/api/v1/namespaces", body=b'[{"op":"add"}]', content_type="application/json-patch+json")
    first, second = server.requests
    assert first.body == b'{"metadata":{"name":"x"}}'
    assert first.headers["Content-Type"] == "application/json"
    assert second.body == b'[{"op":"add"}]'
    assert second.headers["Content-Type"] == "application/json-patch+json"
    client.close()


def test_json_status_body_becomes_typed_error_with_server_message(server: LocalServer) -> None:
    server.json("/api/v1/namespaces/default/pods/web-0", STATUS_404, status=404)
    client, _ = make_client(server)
    with pytest.raises(NotFoundError) as caught:
        client.get_json("/api/v1/namespaces/default/pods/web-0")
    err = caught.value
    assert err.status == 404 and err.reason == "NotFound"
    assert err.server_message == 'pods "web-0" not found'
    assert err.method == "GET" and err.path == "/api/v1/namespaces/default/pods/web-0"
    assert err.details["name"] == "web-0"
    assert client.statistics().requests == {("GET", "4xx"): 1}
    client.close()


def test_reason_refines_the_class(server: LocalServer) -> None:
    server.json(
        "/api/v1/namespaces",
        {"kind": "Status", "reason": "AlreadyExists", "code": 409, "message": 'namespaces "x" already exists'},
        status=409,
    )
    client, _ = make_client(server)
    with pytest.raises(AlreadyExistsError, match="already exists"):
        client.request("POST", "/api/v1/namespaces", body={})
    client.close()


def test_filter_level_text_429_without_retry_after_is_raised_at_once(server: LocalServer) -> None:
    server.route("/api/v1/pods")(
        lambda h: h.send_body(
            429, b"Too many requests, please try again later.\n", content_type="text/plain; charset=utf-8"
        )
    )
    client, sleeper = make_client(server)
    with pytest.raises(TooManyRequestsError) as caught:
        client.get_json("/api/v1/pods")
    assert caught.value.server_message == "Too many requests, please try again later."
    assert caught.value.retryable
    assert len(server.requests) == 1
    assert sleeper.waits == []
    assert client.statistics().retries == 0
    client.close()


def test_text_500_becomes_internal_server_error(server: LocalServer) -> None:
    server.route("/api/v1/pods")(lambda h: h.send_body(500, b"etcdserver: leader changed", content_type="text/plain"))
    client, _ = make_client(server)
    with pytest.raises(InternalServerError, match="etcdserver: leader changed"):
        client.get_json("/api/v1/pods")
    client.close()


def test_429_with_retry_after_is_retried_then_succeeds(server: LocalServer) -> None:
    too_many = {"kind": "Status", "reason": "TooManyRequests", "code": 429, "message": "slow down"}
    server.sequence(
        "/api/v1/pods",
        [
            lambda h: h.send_json(429, too_many, headers={"Retry-After": "0.25"}),
            lambda h: h.send_json(200, {"kind": "PodList", "items": []}),
        ],
    )
    client, sleeper = make_client(server)
    assert client.get_json("/api/v1/pods") == {"kind": "PodList", "items": []}
    assert sleeper.waits == [0.25]
    stats = client.statistics()
    assert stats.retries == 1
    assert stats.requests == {("GET", "4xx"): 1, ("GET", "2xx"): 1}
    client.close()


def test_retry_after_on_5xx_is_honoured_for_writes_too(server: LocalServer) -> None:
    server.sequence(
        "/api/v1/namespaces",
        [
            lambda h: h.send_body(503, b"shutting down", content_type="text/plain", headers={"Retry-After": "1"}),
            lambda h: h.send_json(201, {"kind": "Namespace"}),
        ],
    )
    client, sleeper = make_client(server)
    assert client.request("POST", "/api/v1/namespaces", body={}).status == 201
    assert sleeper.waits == [1.0]
    assert [r.body for r in server.requests] == [b"{}", b"{}"]
    client.close()


def test_retries_are_bounded_then_the_typed_error_is_raised(server: LocalServer) -> None:
    server.route("/api/v1/pods")(
        lambda h: h.send_body(503, b"busy", content_type="text/plain", headers={"Retry-After": "0"})
    )
    client, sleeper = make_client(server, max_retries=3)
    with pytest.raises(ServiceUnavailableError) as caught:
        client.get_json("/api/v1/pods")
    assert caught.value.retry_after == 0.0
    assert len(server.requests) == 4  # the first attempt and three retries
    assert client.statistics().retries == 3
    assert sleeper.waits == [0.0, 0.0, 0.0]
    client.close()


def test_http_date_retry_after_is_not_retried(server: LocalServer) -> None:
    server.route("/api/v1/pods")(
        lambda h: h.send_body(
            429, b"x", content_type="text/plain", headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}
        )
    )
    client, _ = make_client(server)
    with pytest.raises(TooManyRequestsError):
        client.get_json("/api/v1/pods")
    assert len(server.requests) == 1
    client.close()


def test_throttle_spaces_requests_per_qps_and_burst(server: LocalServer) -> None:
    server.json("/api", {"kind": "APIVersions", "versions": ["v1"]})
    client, sleeper = make_client(server, qps=2.0, burst=3)
    for _ in range(6):
        client.get_json("/api")
    # Three requests ride the burst; each later one waits 1/qps for a refilled token.
    assert sleeper.waits == [0.5, 0.5, 0.5]
    stats = client.statistics()
    assert stats.throttle_waits == 3
    assert stats.long_throttle_waits == 3
    assert stats.throttle_seconds == pytest.approx(1.5)
    assert stats.token_bucket.reservations == 6
    client.close()


def test_negative_qps_never_waits(server: LocalServer) -> None:
    server.json("/api", {"versions": ["v1"]})
    client, sleeper = make_client(server, qps=-1.0, burst=1)
    for _ in range(5):
        client.get_json("/api")
    assert sleeper.waits == []
    assert client.statistics().throttle_waits == 0
    client.close()


def test_read_timeout_raises_transport_error_without_retry(server: LocalServer) -> None:
    server.route("/api/v1/pods")(lambda h: h.stall(5.0))
    client, sleeper = make_client(server, read_timeout=0.2)
    with pytest.raises(TransportError, match="read timeout of 0.2 s") as caught:
        client.get_json("/api/v1/pods")
    assert not isinstance(caught.value, ConnectError)
    assert len(server.requests) == 1
    assert client.statistics().requests == {("GET", "error"): 1}
    client.close()


def test_per_request_timeout_overrides_read_timeout(server: LocalServer) -> None:
    server.route("/slow")(lambda h: h.stall(5.0))
    client, _ = make_client(server, read_timeout=60.0)
    with pytest.raises(TransportError, match="read timeout of 0.1 s"):
        client.request("GET", "/slow", timeout=0.1)
    client.close()


def test_get_is_retried_after_a_dropped_connection(server: LocalServer) -> None:
    server.sequence("/api/v1/pods", [Handler.drop, lambda h: h.send_json(200, {"items": []})])
    client, sleeper = make_client(server)
    assert client.get_json("/api/v1/pods") == {"items": []}
    assert sleeper.waits == [1.0]  # connection_retry_delay
    assert client.statistics().connection_retries == 1
    client.close()


def test_write_is_not_retried_after_a_dropped_connection(server: LocalServer) -> None:
    server.sequence("/api/v1/namespaces", [Handler.drop, lambda h: h.send_json(201, {})])
    client, _ = make_client(server)
    with pytest.raises(TransportError, match="connection dropped"):
        client.request("POST", "/api/v1/namespaces", body={})
    assert len(server.requests) == 1
    assert client.statistics().connection_retries == 0
    client.close()


def test_refused_connection_raises_connect_error_after_bounded_retries() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clock = FakeClock()
    sleeper = Sleeper(clock)
    client = ApiClient(
        ClientConfig(host=f"http://127.0.0.1:{port}", qps=-1.0, connection_retries=2), clock=clock, sleep=sleeper
    )
    with pytest.raises(ConnectError, match="cannot connect"):
        client.get_json("/api")
    assert sleeper.waits == [1.0, 1.0]
    assert client.statistics().requests == {("GET", "error"): 3}
    client.close()


def test_non_json_success_body_raises_malformed(server: LocalServer) -> None:
    server.route("/healthz")(lambda h: h.send_body(200, b"ok", content_type="text/plain"))
    client, _ = make_client(server)
    resp = client.request("GET", "/healthz")
    assert resp.body == b"ok"
    with pytest.raises(MalformedResponseError):
        resp.json()
    client.close()


def test_observer_sees_each_attempt_retry_and_throttle(server: LocalServer) -> None:
    server.sequence(
        "/api", [lambda h: h.send_body(429, b"", headers={"Retry-After": "0"}), lambda h: h.send_json(200, {})]
    )
    calls: list[tuple[str, dict[str, object]]] = []

    class Observer:
        def request_done(self, **fields: object) -> None:
            calls.append(("done", fields))

        def request_throttled(self, **fields: object) -> None:
            calls.append(("throttled", fields))

        def request_retried(self, **fields: object) -> None:
            calls.append(("retried", fields))

    clock = FakeClock()
    config = ClientConfig(host=server.url, qps=1.0, burst=1)
    client = ApiClient(config, clock=clock, sleep=Sleeper(clock), observer=Observer())
    client.get_json("/api")
    host = server.url.removeprefix("http://")
    assert [(kind, f.get("code")) for kind, f in calls] == [
        ("done", "429"),
        ("retried", "429"),
        ("throttled", None),
        ("done", "200"),
    ]
    assert all(f["host"] == host and f["method"] == "GET" for _, f in calls)
    assert calls[2][1]["seconds"] == pytest.approx(1.0)
    client.close()


def test_observer_failure_does_not_fail_the_request(server: LocalServer) -> None:
    server.json("/api", {})

    class Broken:
        def request_done(self, **fields: object) -> None:
            raise RuntimeError("metrics bug")

        request_throttled = request_retried = request_done

    client = ApiClient(ClientConfig(host=server.url, qps=-1.0), observer=Broken())
    assert client.get_json("/api") == {}
    client.close()


def test_close_wakes_a_caller_waiting_for_retry_after(server: LocalServer) -> None:
    server.route("/api")(lambda h: h.send_body(429, b"", headers={"Retry-After": "60"}))
    client = ApiClient(ClientConfig(host=server.url, qps=-1.0))
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            client.get_json("/api")
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    while not server.requests:
        threading.Event().wait(0.01)
    client.close()
    worker.join(5)
    assert not worker.is_alive()
    assert isinstance(outcome[0], ClientClosedError)
    with pytest.raises(ClientClosedError):
        client.get_json("/api")


def test_host_path_prefix_is_kept(server: LocalServer) -> None:
    server.json("/k8s/clusters/c-1/api", {"versions": ["v1"]})
    clock = FakeClock()
    client = ApiClient(replace(ClientConfig(host=server.url + "/k8s/clusters/c-1/"), qps=-1.0), clock=clock)
    assert client.get_json("/api") == {"versions": ["v1"]}
    with pytest.raises(ValueError):
        client.get_json("api")
    client.close()


def test_extra_headers_are_sent(server: LocalServer) -> None:
    server.json("/apis", {})
    client, _ = make_client(server)
    client.request("GET", "/apis", headers={"Accept": "application/json;as=Table", "Impersonate-User": "bob"})
    (seen,) = server.requests
    assert seen.headers["Accept"] == "application/json;as=Table"
    assert seen.headers["Impersonate-User"] == "bob"
    client.close()


def test_one_client_shared_by_threads(server: LocalServer) -> None:
    server.json("/api", {"versions": ["v1"]})
    client, _ = make_client(server, pool_maxsize=4)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                assert client.get_json("/api") == {"versions": ["v1"]}
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    stats = client.statistics()
    assert stats.requests == {("GET", "2xx"): 160}
    assert stats.in_flight == 0
    client.close()


def test_closed_client_error_is_not_a_retryable_transport_error(server: LocalServer) -> None:
    assert not issubclass(ClientClosedError, TransportError)
    assert issubclass(ClientClosedError, InformerdError) and not ClientClosedError.retryable
    server.json("/api", {})
    client, sleeper = make_client(server)
    client.close()
    with pytest.raises(ClientClosedError):
        client.get_json("/api")
    assert server.requests == [] and sleeper.waits == []  # nothing sent, no retry waited out
