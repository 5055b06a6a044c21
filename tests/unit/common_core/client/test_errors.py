"""The error table covers every stable code, and any answer becomes a typed error."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from common_core.client.errors import (
    ERROR_CLASSES,
    AuthenticationError,
    ComparisonFailedError,
    ForbiddenError,
    IdempotencyKeyReusedError,
    LLMProviderServiceError,
    ProviderFailedError,
    RequestRejectedError,
    ServiceUnavailableError,
    TransportError,
    error_from_response,
    is_transient,
)
from common_core.enums import ErrorCode


def shaped(code: str, message: str = "m", **details: object) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "details": details}}).encode()


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_error_code_has_a_class(code: ErrorCode):
    assert code.value in ERROR_CLASSES
    assert issubclass(ERROR_CLASSES[code.value], LLMProviderServiceError)


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("VALIDATION_ERROR", RequestRejectedError),
        ("UNAUTHORIZED", AuthenticationError),
        ("IDEMPOTENCY_KEY_REUSED", IdempotencyKeyReusedError),
        ("PROVIDER_AUTH_ERROR", ProviderFailedError),
        ("INVALID_PROVIDER_RESPONSE", ProviderFailedError),
        ("PROVIDER_NOT_CONFIGURED", ServiceUnavailableError),
        ("PROVIDER_TIMEOUT", ServiceUnavailableError),
        ("QUEUE_FULL", ServiceUnavailableError),
        ("REQUEST_EXPIRED", ComparisonFailedError),
        ("INTERNAL_ERROR", LLMProviderServiceError),
    ],
)
def test_codes_map_to_their_classes(code: str, cls: type[LLMProviderServiceError]):
    assert ERROR_CLASSES[code] is cls


def test_an_error_body_becomes_its_class_with_every_field():
    correlation_id = uuid.uuid4()
    body = json.dumps(
        {
            "error": {
                "code": "QUEUE_FULL",
                "message": "the queue is full",
                "correlation_id": str(correlation_id),
                "details": {"limit": 10},
            }
        }
    ).encode()

    error = error_from_response(503, body, httpx.Headers(), retry_after=7.0)

    assert type(error) is ServiceUnavailableError
    assert (error.code, error.message, error.status) == ("QUEUE_FULL", "the queue is full", 503)
    assert error.details == {"limit": 10}
    assert error.correlation_id == correlation_id
    assert error.retry_after == 7.0
    assert str(error) == "QUEUE_FULL (HTTP 503): the queue is full"


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, RequestRejectedError),
        (401, AuthenticationError),
        (403, ForbiddenError),
        (422, RequestRejectedError),
        (429, ServiceUnavailableError),
        (502, ProviderFailedError),
        (503, ServiceUnavailableError),
        (504, ServiceUnavailableError),
        (500, LLMProviderServiceError),
    ],
)
def test_unknown_codes_fall_back_by_status(status: int, cls: type[LLMProviderServiceError]):
    error = error_from_response(status, shaped("SOMETHING_NEW"), httpx.Headers())

    assert type(error) is cls
    assert (error.code, error.status) == ("SOMETHING_NEW", status)


def test_forbidden_is_its_own_class_by_code_and_by_status():
    assert type(error_from_response(403, shaped("FORBIDDEN"), httpx.Headers())) is ForbiddenError
    assert type(error_from_response(403, b"<html>no</html>", httpx.Headers())) is ForbiddenError


def test_a_body_that_is_not_the_error_shape_still_gives_a_typed_error():
    correlation_id = uuid.uuid4()
    headers = httpx.Headers({"X-Correlation-ID": str(correlation_id)})

    error = error_from_response(502, b"<html><h1>502 Bad Gateway</h1></html>", headers)

    assert type(error) is ServiceUnavailableError  # a proxy's 502: the service is unreachable
    assert (error.code, error.status) == ("UNKNOWN", 502)
    assert "502 Bad Gateway" in error.message
    assert error.correlation_id == correlation_id


def test_a_status_only_code_in_an_http_answer_keeps_the_status_class():
    error = error_from_response(404, shaped("REQUEST_EXPIRED"), httpx.Headers())

    assert type(error) is RequestRejectedError
    assert error.code == "REQUEST_EXPIRED"


@pytest.mark.parametrize(
    ("status", "body", "retry_after", "transient"),
    [
        (503, shaped("PROVIDER_UNAVAILABLE"), 5.0, True),
        (503, shaped("QUEUE_UNAVAILABLE"), None, True),
        (504, shaped("PROVIDER_TIMEOUT"), None, True),
        (429, shaped("RATE_LIMITED"), 2.0, True),
        (409, shaped("CONFLICT"), 1.0, True),
        (409, shaped("CONFLICT"), None, False),
        (409, shaped("IDEMPOTENCY_KEY_REUSED"), None, False),
        (503, shaped("PROVIDER_NOT_CONFIGURED"), 5.0, False),
        (503, shaped("PROVIDER_DISABLED"), 5.0, False),
        (502, shaped("PROVIDER_AUTH_ERROR"), None, False),
        (502, b"Bad Gateway", None, True),
        (400, shaped("VALIDATION_ERROR"), None, False),
        (404, shaped("NOT_FOUND"), None, False),
        (500, shaped("INTERNAL_ERROR"), None, False),
    ],
)
def test_which_answers_are_retried(
    status: int, body: bytes, retry_after: float | None, transient: bool
):
    error = error_from_response(status, body, httpx.Headers(), retry_after=retry_after)

    assert is_transient(error) is transient


@pytest.mark.parametrize(
    ("code", "transient"),
    [("TIMEOUT", True), ("CONNECTION_ERROR", True), ("PROTOCOL_ERROR", False)],
)
def test_transport_errors_are_retried_unless_the_request_could_not_be_sent(
    code: str, transient: bool
):
    assert is_transient(TransportError("no answer", code=code)) is transient
