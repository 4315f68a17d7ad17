"""How the apiserver's error answers are typed, including the ones that look like something else."""

from __future__ import annotations

import orjson
import pytest

from controllers.circuit import is_retryable_failure
from informers.errors import (
    ForbiddenError,
    InternalServerError,
    RequestTooLargeError,
    ServerError,
    ServiceUnavailableError,
    api_error_from_response,
    api_error_from_status,
)


def status_body(code: int, message: str, reason: str = "") -> bytes:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code}
    if reason:
        body["reason"] = reason
    return orjson.dumps(body)


def test_etcds_request_is_too_large_is_the_callers_fault_not_a_server_failure():
    """Regression: an object between 1.5 and 3 MB came back as a retryable 500; the writer retried
    it and every attempt counted against the API group's circuit breaker."""
    error = api_error_from_response(500, status_body(500, "etcdserver: request is too large"))
    assert isinstance(error, RequestTooLargeError) and not isinstance(error, ServerError)
    assert not error.retryable and not is_retryable_failure(error)
    assert error.status == 500  # the server's own code is kept


def test_413_request_entity_too_large_is_the_same_error():
    error = api_error_from_response(
        413, status_body(413, "Request entity too large: limit is 3145728", "RequestEntityTooLarge")
    )
    assert isinstance(error, RequestTooLargeError) and not error.retryable


def test_other_internal_errors_stay_retryable_server_errors():
    error = api_error_from_response(500, status_body(500, "etcdserver: leader changed"))
    assert isinstance(error, InternalServerError) and error.retryable


@pytest.mark.parametrize("code", ["five hundred", "", None, {"x": 1}, 42, 10**9, True, "503x"])
def test_a_status_with_an_unusable_code_is_still_a_typed_error(code: object) -> None:
    """A hostile or broken Status (e.g. in a watch ERROR event) must never escape as a ValueError."""
    error = api_error_from_status({"kind": "Status", "code": code, "message": "odd"})
    assert type(error) is InternalServerError and error.status == 500 and error.retryable


def test_a_numeric_string_code_and_a_bad_retry_after_are_read_safely() -> None:
    error = api_error_from_status({"code": "403", "details": {"retryAfterSeconds": "soon"}})
    assert isinstance(error, ForbiddenError) and error.retry_after is None


def test_the_message_stays_bounded_whatever_the_reason_and_message() -> None:
    error = api_error_from_status({"code": 503, "reason": "R" * 8_000_000, "message": "m" * 8_000_000})
    assert isinstance(error, ServiceUnavailableError)
    assert len(str(error)) < 2000
    assert len(error.reason) == 8_000_000  # the full value stays on the attribute


@pytest.mark.parametrize(
    "body",
    [
        b'{"kind":"Secret","metadata":{"name":"s"},"data":{"password":"czNjcjN0"}}',
        b'{"kind":"Secret","metadata":{"name":"s"},"data":{"password":"czNjcjN0"',  # cut short
        b'[{"password":"czNjcjN0"}]',
    ],
    ids=["an-object", "an-object-cut-short", "a-list"],
)
def test_a_json_body_that_is_not_a_status_is_not_quoted(body: bytes) -> None:
    error = api_error_from_response(500, body)
    assert isinstance(error, InternalServerError)
    assert "czNjcjN0" not in str(error) and "not a Status" in str(error)


def test_plain_text_bodies_are_still_quoted_briefly() -> None:
    error = api_error_from_response(429, b"Too many requests, please try again later.\n" * 100)
    assert str(error).count("Too many requests") >= 1 and len(str(error)) < 1000
