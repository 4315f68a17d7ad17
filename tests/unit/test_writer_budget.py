"""One retry budget per ``ApiWriter`` call, against a real local HTTP server: a call sends at most
``1 + WriterOptions.retries`` requests whatever the cause, never ``(1 + retries) * (1 + max_retries)``
(it used to send 44 to a server that always answers 503 with ``Retry-After: 0``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from controllers.writer import ApiWriter, PatchType, WriterOptions
from informers.client import ApiClient
from informers.clock import FakeClock
from informers.config import ClientConfig
from informers.errors import ServiceUnavailableError, TooManyRequestsError, TransportError
from informers.resources import Resource

from ._local_http import Handler, LocalServer

CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", namespaced=True)
COLLECTION = "/api/v1/namespaces/ns/configmaps"
ITEM = COLLECTION + "/cm"
NAMED = {"metadata": {"name": "cm", "namespace": "ns"}}
GENERATED = {"metadata": {"generateName": "cm-", "namespace": "ns"}}


@pytest.fixture
def server() -> Iterator[LocalServer]:
    srv = LocalServer()
    yield srv
    srv.close()


def _always_503(handler: Handler) -> None:
    handler.send_body(503, b"busy", content_type="text/plain", headers={"Retry-After": "0"})


def _always_429(handler: Handler) -> None:
    handler.send_json(
        429,
        {"kind": "Status", "code": 429, "reason": "TooManyRequests", "message": "slow down"},
        headers={"Retry-After": "0"},
    )


def _writer(server: LocalServer, **options: Any) -> tuple[ApiWriter, list[float], list[float]]:
    """A writer over a real client with the client's defaults (max_retries=10, connection_retries=3)."""
    client_waits: list[float] = []
    writer_waits: list[float] = []
    client = ApiClient(ClientConfig(host=server.url, qps=-1.0), clock=FakeClock(), sleep=client_waits.append)
    writer = ApiWriter(client, WriterOptions(**options), clock=FakeClock(), sleep=writer_waits.append)
    return writer, writer_waits, client_waits


Call = Callable[[ApiWriter], object]
CREATE: Call = lambda w: w.create(CONFIGMAPS, NAMED)  # noqa: E731
PATCH: Call = lambda w: w.patch(CONFIGMAPS, "cm", {"data": {"a": "1"}}, namespace="ns")  # noqa: E731


@pytest.mark.parametrize("retries", [0, 1, 3])
@pytest.mark.parametrize(
    ("answer", "error"), [(_always_503, ServiceUnavailableError), (_always_429, TooManyRequestsError)]
)
@pytest.mark.parametrize("call", [CREATE, PATCH], ids=["create", "patch"])
def test_a_writer_call_sends_one_plus_retries_requests(
    server: LocalServer, retries: int, answer: Callable[[Handler], None], error: type[Exception], call: Call
) -> None:
    server.route(COLLECTION)(answer)
    server.route(ITEM)(answer)
    writer, writer_waits, client_waits = _writer(server, retries=retries)
    with pytest.raises(error):
        call(writer)
    assert len(server.requests) == 1 + retries
    assert client_waits == []  # the client repeated nothing itself...
    assert writer_waits == [0.0] * retries  # ...the writer waited the server's Retry-After: 0
    stats = writer.statistics()
    assert (stats.attempts, stats.retries) == (1 + retries, retries)
    writer.client.close()


def test_the_default_writer_budget_is_four_requests(server: LocalServer) -> None:
    server.route(COLLECTION)(_always_503)
    writer, _, _ = _writer(server)
    with pytest.raises(ServiceUnavailableError):
        CREATE(writer)
    assert len(server.requests) == 4  # 1 + WriterOptions.retries (3); it was 44
    writer.client.close()


def test_a_writer_get_to_a_server_that_drops_connections_sends_one_plus_retries(server: LocalServer) -> None:
    server.route(ITEM)(Handler.drop)
    writer, writer_waits, client_waits = _writer(server, retries=2, backoff_initial=0.5, backoff_jitter=0.0)
    with pytest.raises(TransportError, match="connection dropped"):
        writer.get(CONFIGMAPS, "cm", namespace="ns")
    # Not 1 + connection_retries (4), nor (1 + 2) * 4 = 12 as when both layers retried.
    assert len(server.requests) == 3 and client_waits == []
    assert writer_waits == pytest.approx([0.5, 1.0])  # no Retry-After: the writer's backoff
    writer.client.close()


def test_a_retry_after_then_success_waits_what_the_server_asked(server: LocalServer) -> None:
    server.sequence(
        ITEM,
        [
            lambda h: h.send_body(503, b"", headers={"Retry-After": "2"}),
            lambda h: h.send_json(200, {"kind": "ConfigMap", "metadata": {"name": "cm"}}),
        ],
    )
    writer, writer_waits, client_waits = _writer(server)
    assert writer.get(CONFIGMAPS, "cm", namespace="ns")["metadata"]["name"] == "cm"
    assert len(server.requests) == 2 and writer_waits == [2.0] and client_waits == []
    writer.client.close()


@pytest.mark.parametrize("answer", [_always_503, Handler.drop], ids=["503-retry-after", "dropped"])
def test_writes_that_could_act_twice_are_sent_once_after_an_unknown_outcome(
    server: LocalServer, answer: Callable[[Handler], None]
) -> None:
    server.route(COLLECTION)(answer)
    server.route(ITEM)(answer)
    writer, writer_waits, _ = _writer(server)
    with pytest.raises((ServiceUnavailableError, TransportError)):
        writer.create(CONFIGMAPS, GENERATED)
    with pytest.raises((ServiceUnavailableError, TransportError)):
        writer.patch(
            CONFIGMAPS,
            "cm",
            [{"op": "add", "path": "/metadata/finalizers/-", "value": "x"}],
            namespace="ns",
            patch_type=PatchType.JSON,
        )
    assert len(server.requests) == 2 and writer_waits == []  # one each; the client retried neither
    writer.client.close()


def test_a_generate_name_create_refused_with_429_is_repeated_within_the_budget(server: LocalServer) -> None:
    server.route(COLLECTION)(_always_429)
    writer, writer_waits, _ = _writer(server, retries=2)
    with pytest.raises(TooManyRequestsError):
        writer.create(CONFIGMAPS, GENERATED)
    assert len(server.requests) == 3 and writer_waits == [0.0, 0.0]
    writer.client.close()
