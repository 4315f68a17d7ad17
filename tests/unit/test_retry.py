"""The one Retry-After reader (``informers._retry``) and the places that use it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from informers._retry import parse_retry_after
from informers.client import ApiClient
from informers.clock import FakeClock
from informers.config import ClientConfig
from informers.errors import ServiceUnavailableError, TooManyRequestsError, api_error_from_response

from ._local_http import LocalServer


@pytest.fixture
def server() -> Iterator[LocalServer]:
    srv = LocalServer()
    yield srv
    srv.close()


@pytest.mark.parametrize(("raw", "seconds"), [
    ("0", 0.0), ("1", 1.0), (" 2 ", 2.0), ("0.25", 0.25), ("120", 120.0), ("1e1", 10.0),
])
def test_numeric_seconds_are_read(raw: str, seconds: float) -> None:
    assert parse_retry_after(raw) == seconds


@pytest.mark.parametrize("raw", [
    None, "", "   ", "-1", "-0.5", "nan", "NaN", "inf", "-inf", "Infinity",
    "Wed, 21 Oct 2015 07:28:00 GMT",  # the HTTP-date form: the apiserver never sends it
    "soon",
])
def test_absent_negative_non_finite_and_dates_are_rejected(raw: str | None) -> None:
    assert parse_retry_after(raw) is None


@pytest.mark.parametrize(("raw", "expected"), [("3", 3.0), ("-3", None), ("nan", None), ("inf", None)])
def test_typed_errors_carry_what_the_parser_read(raw: str, expected: float | None) -> None:
    error = api_error_from_response(429, b"slow down", {"Retry-After": raw})
    assert isinstance(error, TooManyRequestsError) and error.retry_after == expected


@pytest.mark.parametrize("raw", ["-1", "nan", "inf"])
def test_the_client_does_not_retry_on_a_rejected_retry_after(server: LocalServer, raw: str) -> None:
    server.route("/api")(lambda h: h.send_body(503, b"busy", content_type="text/plain",
                                               headers={"Retry-After": raw}))
    waits: list[float] = []
    client = ApiClient(ClientConfig(host=server.url, qps=-1.0), clock=FakeClock(), sleep=waits.append)
    with pytest.raises(ServiceUnavailableError) as caught:
        client.get_json("/api")
    assert len(server.requests) == 1 and waits == [] and caught.value.retry_after is None
    client.close()


def test_the_client_waits_what_the_parser_read(server: LocalServer) -> None:
    server.sequence("/api", [lambda h: h.send_body(429, b"", headers={"Retry-After": " 0.5 "}),
                             lambda h: h.send_json(200, {})])
    waits: list[float] = []
    client = ApiClient(ClientConfig(host=server.url, qps=-1.0), clock=FakeClock(), sleep=waits.append)
    assert client.get_json("/api") == {}
    assert waits == [0.5]
    client.close()
