"""``informers._retry``: the one Retry-After reader, the per-call ``RetryBudget``, and the number of
requests one ``ApiClient`` call sends against a real local HTTP server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from informers._retry import RetryBudget, parse_retry_after
from informers.client import ApiClient
from informers.clock import FakeClock
from informers.config import ClientConfig
from informers.errors import ServiceUnavailableError, TooManyRequestsError, TransportError, api_error_from_response

from ._local_http import Handler, LocalServer


@pytest.fixture
def server() -> Iterator[LocalServer]:
    srv = LocalServer()
    yield srv
    srv.close()


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("0", 0.0),
        ("1", 1.0),
        (" 2 ", 2.0),
        ("0.25", 0.25),
        ("120", 120.0),
        ("1e1", 10.0),
    ],
)
def test_numeric_seconds_are_read(raw: str, seconds: float) -> None:
    assert parse_retry_after(raw) == seconds


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "   ",
        "-1",
        "-0.5",
        "nan",
        "NaN",
        "inf",
        "-inf",
        "Infinity",
        "Wed, 21 Oct 2015 07:28:00 GMT",  # the HTTP-date form: the apiserver never sends it
        "soon",
    ],
)
def test_absent_negative_non_finite_and_dates_are_rejected(raw: str | None) -> None:
    assert parse_retry_after(raw) is None


@pytest.mark.parametrize(("raw", "expected"), [("3", 3.0), ("-3", None), ("nan", None), ("inf", None)])
def test_typed_errors_carry_what_the_parser_read(raw: str, expected: float | None) -> None:
    error = api_error_from_response(429, b"slow down", {"Retry-After": raw})
    assert isinstance(error, TooManyRequestsError) and error.retry_after == expected


@pytest.mark.parametrize("raw", ["-1", "nan", "inf"])
def test_the_client_does_not_retry_on_a_rejected_retry_after(server: LocalServer, raw: str) -> None:
    server.route("/api")(lambda h: h.send_body(503, b"busy", content_type="text/plain", headers={"Retry-After": raw}))
    waits: list[float] = []
    client = ApiClient(ClientConfig(host=server.url, qps=-1.0), clock=FakeClock(), sleep=waits.append)
    with pytest.raises(ServiceUnavailableError) as caught:
        client.get_json("/api")
    assert len(server.requests) == 1 and waits == [] and caught.value.retry_after is None
    client.close()


def test_the_client_waits_what_the_parser_read(server: LocalServer) -> None:
    server.sequence(
        "/api", [lambda h: h.send_body(429, b"", headers={"Retry-After": " 0.5 "}), lambda h: h.send_json(200, {})]
    )
    waits: list[float] = []
    client = ApiClient(ClientConfig(host=server.url, qps=-1.0), clock=FakeClock(), sleep=waits.append)
    assert client.get_json("/api") == {}
    assert waits == [0.5]
    client.close()


# -- the budget ---------------------------------------------------------------------------------


def test_a_budget_grants_its_repeats_then_refuses() -> None:
    budget = RetryBudget(3, connection_retries=1)
    assert budget.spend(connection=True)
    assert not budget.spend(connection=True)  # the connection share is used up...
    assert budget.spend() and budget.spend()  # ...the rest still serves other causes
    assert not budget.spend() and budget.remaining == 0
    assert (budget.spent, budget.connection_spent) == (3, 1)


def test_the_connection_share_is_capped_by_the_whole_budget() -> None:
    budget = RetryBudget(1, connection_retries=5)
    assert budget.connection_retries == 1
    assert budget.spend(connection=True) and not budget.spend(connection=True)
    assert RetryBudget(2).connection_retries == 2  # default: every repeat may be one


def test_a_repeat_nobody_spent_for_is_refused() -> None:
    budget = RetryBudget(2)
    budget.start_attempt()
    with pytest.raises(RuntimeError, match="without a retry"):
        budget.start_attempt()
    assert budget.spend()
    budget.start_attempt()
    assert budget.attempts == 2


def test_negative_budgets_are_rejected() -> None:
    with pytest.raises(ValueError):
        RetryBudget(-1)
    with pytest.raises(ValueError):
        RetryBudget(1, connection_retries=-1)


# -- requests per ApiClient call, against a real server -----------------------------------------


def _client(server: LocalServer, **options: object) -> tuple[ApiClient, list[float]]:
    waits: list[float] = []
    config = ClientConfig(host=server.url, qps=-1.0, **options)  # type: ignore[arg-type]
    return ApiClient(config, clock=FakeClock(), sleep=waits.append), waits


def _always_503(handler: Handler) -> None:
    handler.send_body(503, b"busy", content_type="text/plain", headers={"Retry-After": "0"})


def _always_429(handler: Handler) -> None:
    handler.send_json(
        429,
        {"kind": "Status", "code": 429, "reason": "TooManyRequests", "message": "slow down"},
        headers={"Retry-After": "0"},
    )


@pytest.mark.parametrize(
    ("answer", "error"), [(_always_503, ServiceUnavailableError), (_always_429, TooManyRequestsError)]
)
def test_a_get_gets_one_plus_max_retries_requests(server: LocalServer, answer: object, error: type) -> None:
    server.route("/api/v1/pods")(answer)  # type: ignore[arg-type]
    client, waits = _client(server)  # the defaults: max_retries=10
    with pytest.raises(error):
        client.get_json("/api/v1/pods")
    assert len(server.requests) == 1 + 10 and waits == [0.0] * 10
    client.close()


def test_a_get_to_a_server_that_drops_connections_gets_one_plus_connection_retries(server: LocalServer) -> None:
    server.route("/api/v1/pods")(Handler.drop)
    client, waits = _client(server)  # the defaults: connection_retries=3
    with pytest.raises(TransportError, match="connection dropped"):
        client.get_json("/api/v1/pods")
    assert len(server.requests) == 1 + 3 and waits == [1.0] * 3
    assert client.statistics().connection_retries == 3
    client.close()


def test_connection_and_retry_after_repeats_share_one_budget(server: LocalServer) -> None:
    server.sequence("/api/v1/pods", [Handler.drop, _always_503] * 4 + [_always_503])
    client, _ = _client(server, max_retries=4, connection_retries=3)
    with pytest.raises(TransportError):  # the fifth answer (a drop) finds the budget spent
        client.get_json("/api/v1/pods")
    # Separate counters (3 connection + 4 Retry-After retries) sent 7 requests here; one budget 1 + 4.
    assert len(server.requests) == 5
    stats = client.statistics()
    assert (stats.connection_retries, stats.retries) == (2, 2)
    client.close()


def test_max_retries_zero_disables_connection_retries_too(server: LocalServer) -> None:
    server.route("/api/v1/pods")(Handler.drop)
    client, waits = _client(server, max_retries=0, connection_retries=3)
    with pytest.raises(TransportError):
        client.get_json("/api/v1/pods")
    assert len(server.requests) == 1 and waits == []
    client.close()


def test_a_budget_owned_above_the_client_makes_it_send_once(server: LocalServer) -> None:
    server.route("/api/v1/pods")(_always_503)
    client, waits = _client(server)
    budget = RetryBudget(3, retry_in_client=False)
    with pytest.raises(ServiceUnavailableError) as caught:
        client.request("GET", "/api/v1/pods", budget=budget)
    assert caught.value.retry_after == 0.0  # the owner waits this before its own repeat
    assert len(server.requests) == 1 and waits == [] and budget.attempts == 1 and budget.spent == 0
    client.close()
