"""How the apiserver's error answers are typed, including the ones that look like something else."""

from __future__ import annotations

import orjson

from controllers.circuit import is_retryable_failure
from informers.errors import (
    InternalServerError,
    RequestTooLargeError,
    ServerError,
    api_error_from_response,
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
