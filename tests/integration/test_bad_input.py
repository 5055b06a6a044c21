"""Bad input gets one error shape everywhere, names the offending field, and is never a 500."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import pytest
from dishka import Provider, Scope, provide
from quart.typing import TestClientProtocol as Client

from common_core.api_models import ComparisonRequest
from services.llm_provider_service.orchestrator import ComparisonOrchestrator, Completed, Queued
from tests.integration.conftest import StartApp

COMPARISON = "/api/v1/comparison"
VALID: dict[str, Any] = {
    "user_prompt": "Which essay argues its thesis better?",
    "essay_a": "Essay A argues carefully, with evidence.",
    "essay_b": "Essay B asserts loudly, without evidence.",
}
JSON_HEADERS = {"Content-Type": "application/json"}
_DROP = object()  # a field left out of the body


def body(**fields: Any) -> bytes:
    merged = {**VALID, **fields}
    return json.dumps({k: v for k, v in merged.items() if v is not _DROP}).encode()


async def assert_error_shape(response: Any, status: int, code: str) -> dict[str, Any]:
    """The one error shape: `{"error": {code, message, correlation_id, details}}`, JSON."""
    assert response.status_code == status, await response.get_data(as_text=True)
    assert response.content_type == "application/json"
    payload = await response.get_json()
    assert set(payload) == {"error"}
    error: dict[str, Any] = payload["error"]
    assert set(error) == {"code", "message", "correlation_id", "details"}
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"].strip()
    assert isinstance(error["details"], dict)
    assert error["correlation_id"] == response.headers["X-Correlation-ID"]
    uuid.UUID(error["correlation_id"])
    return error


# (raw body, expected status, expected code, the field the message must name or None)
COMPARISON_CASES: dict[str, tuple[bytes, int, str, str | None]] = {
    "malformed_json": (b'{"user_prompt": "x",', 400, "VALIDATION_ERROR", None),
    "empty_body": (b"", 400, "VALIDATION_ERROR", None),
    "whitespace_body": (b"  \n ", 400, "VALIDATION_ERROR", None),
    "json_array": (b'[{"user_prompt": "x"}]', 400, "VALIDATION_ERROR", None),
    "json_string": (b'"compare these"', 400, "VALIDATION_ERROR", None),
    "json_null": (b"null", 400, "VALIDATION_ERROR", None),
    "invalid_utf8": (b'{"user_prompt": "\xff\xfe"}', 400, "VALIDATION_ERROR", None),
    "missing_prompt": (body(user_prompt=_DROP), 400, "VALIDATION_ERROR", "user_prompt"),
    "prompt_is_a_number": (body(user_prompt=42), 400, "VALIDATION_ERROR", "user_prompt"),
    "priority_is_a_word": (body(priority="high"), 400, "VALIDATION_ERROR", "priority"),
    "metadata_is_a_list": (body(metadata=["a"]), 400, "VALIDATION_ERROR", "metadata"),
    "priority_11": (body(priority=11), 400, "VALIDATION_ERROR", "priority"),
    "priority_negative": (body(priority=-1), 400, "VALIDATION_ERROR", "priority"),
    "temperature_2_5": (
        body(llm_config_overrides={"temperature_override": 2.5}),
        400,
        "VALIDATION_ERROR",
        "llm_config_overrides.temperature_override",
    ),
    "max_tokens_0": (
        body(llm_config_overrides={"max_tokens_override": 0}),
        400,
        "VALIDATION_ERROR",
        "llm_config_overrides.max_tokens_override",
    ),
    "reasoning_effort_unknown": (
        body(llm_config_overrides={"reasoning_effort": "extreme"}),
        400,
        "VALIDATION_ERROR",
        "llm_config_overrides.reasoning_effort",
    ),
    "ttl_0": (body(ttl_seconds=0), 400, "VALIDATION_ERROR", "ttl_seconds"),
    "ttl_above_max": (body(ttl_seconds=24 * 3600 + 1), 400, "VALIDATION_ERROR", "ttl_seconds"),
    "unknown_provider": (
        body(llm_config_overrides={"provider_override": "nope"}),
        400,
        "UNKNOWN_PROVIDER",
        "llm_config_overrides.provider_override",
    ),
    "empty_prompt": (body(user_prompt=""), 400, "VALIDATION_ERROR", "user_prompt"),
    "whitespace_prompt": (body(user_prompt=" \n\t "), 400, "VALIDATION_ERROR", "user_prompt"),
    "unknown_field": (body(temprature=0.2), 400, "VALIDATION_ERROR", "temprature"),
    "unknown_override_field": (
        body(llm_config_overrides={"model": "x"}),
        400,
        "VALIDATION_ERROR",
        "llm_config_overrides.model",
    ),
    "essay_a_placeholder_without_essay_a": (
        body(user_prompt="Compare {essay_a} with {essay_b}", essay_a=_DROP),
        400,
        "VALIDATION_ERROR",
        "essay_a",
    ),
    "essay_b_placeholder_without_essay_b": (
        body(user_prompt="Compare {essay_a} with {essay_b}", essay_b=_DROP),
        400,
        "VALIDATION_ERROR",
        "essay_b",
    ),
    "invalid_correlation_id": (
        body(correlation_id="not-a-uuid"),
        400,
        "VALIDATION_ERROR",
        "correlation_id",
    ),
    "invalid_processing_mode": (
        body(processing_mode="later"),
        400,
        "VALIDATION_ERROR",
        "processing_mode",
    ),
    "invalid_cache_mode": (body(cache_mode="always"), 400, "VALIDATION_ERROR", "cache_mode"),
    "development_cache_not_enabled": (
        body(cache_mode="development"),
        400,
        "CACHE_NOT_ALLOWED",
        "cache_mode",
    ),
    "callback_topic_not_allowed": (
        body(callback_topic="evil.results"),
        400,
        "CALLBACK_NOT_ALLOWED",
        "callback_topic",
    ),
    "callback_topic_not_a_topic_name": (
        body(callback_topic="huleedu.results v1"),
        400,
        "CALLBACK_NOT_ALLOWED",
        "callback_topic",
    ),
    "callback_topic_too_long": (
        body(callback_topic="huleedu." + "x" * 250),
        400,
        "VALIDATION_ERROR",
        "callback_topic",
    ),
    "callback_url_not_https": (
        body(callback_url="http://hooks.example.com/hook"),
        400,
        "CALLBACK_NOT_ALLOWED",
        "callback_url",
    ),
    "callback_url_not_a_url": (
        body(callback_url="not a url"),
        400,
        "CALLBACK_NOT_ALLOWED",
        "callback_url",
    ),
    "callback_url_not_allowed": (
        body(callback_url="https://example.com/hook"),
        400,
        "CALLBACK_NOT_ALLOWED",
        "callback_url",
    ),
}


@pytest.mark.parametrize(
    ("raw", "status", "code", "field"),
    list(COMPARISON_CASES.values()),
    ids=list(COMPARISON_CASES),
)
async def test_bad_comparison_request_is_refused_in_the_error_shape(
    client: Client, raw: bytes, status: int, code: str, field: str | None
):
    response = await client.post(COMPARISON, data=raw, headers=JSON_HEADERS)

    assert response.status_code < 500
    error = await assert_error_shape(response, status, code)
    if field is not None:
        assert field in error["message"], error["message"]
        assert error["details"]["field"] == field


async def test_refused_request_is_not_queued(client: Client):
    for raw, *_ in COMPARISON_CASES.values():
        await client.post(COMPARISON, data=raw, headers=JSON_HEADERS)

    health = await (await client.get("/healthz")).get_json()

    assert health["queue_depth"] == 0


@pytest.mark.parametrize(
    "value", [pytest.param("7", id="numeric_string"), pytest.param(True, id="boolean")]
)
async def test_priority_of_the_wrong_json_type_is_refused(client: Client, value: Any):
    response = await client.post(COMPARISON, data=body(priority=value), headers=JSON_HEADERS)

    error = await assert_error_shape(response, 400, "VALIDATION_ERROR")
    assert "priority" in error["message"]


async def test_strict_types_still_accept_a_json_integer_for_a_number(client: Client):
    response = await client.post(
        COMPARISON,
        data=body(
            processing_mode="immediate",
            llm_config_overrides={"temperature_override": 1, "max_tokens_override": 400},
        ),
        headers=JSON_HEADERS,
    )

    assert response.status_code == 200


async def test_error_after_parsing_echoes_the_callers_correlation_id(client: Client):
    correlation_id = str(uuid.uuid4())

    response = await client.post(
        COMPARISON,
        data=body(cache_mode="development", correlation_id=correlation_id),
        headers=JSON_HEADERS,
    )

    error = await assert_error_shape(response, 400, "CACHE_NOT_ALLOWED")
    assert error["correlation_id"] == correlation_id


async def test_error_echoes_the_correlation_header(client: Client):
    correlation_id = str(uuid.uuid4())

    response = await client.post(
        COMPARISON,
        data=b"[]",
        headers={**JSON_HEADERS, "X-Correlation-ID": correlation_id},
    )

    error = await assert_error_shape(response, 400, "VALIDATION_ERROR")
    assert error["correlation_id"] == correlation_id


async def test_validation_error_echoes_the_body_correlation_id(client: Client):
    correlation_id = str(uuid.uuid4())

    response = await client.post(
        COMPARISON, data=body(priority=11, correlation_id=correlation_id), headers=JSON_HEADERS
    )

    error = await assert_error_shape(response, 400, "VALIDATION_ERROR")
    assert error["correlation_id"] == correlation_id


async def test_body_over_the_limit_is_413(start_app: StartApp):
    client = await start_app(max_request_body_bytes=1024)
    raw = body(user_prompt="x" * 2048)
    assert len(raw) > 2048

    response = await client.post(COMPARISON, data=raw, headers=JSON_HEADERS)

    error = await assert_error_shape(response, 413, "PAYLOAD_TOO_LARGE")
    assert "1024" in error["message"]


async def test_body_under_the_limit_is_served(start_app: StartApp):
    client = await start_app(max_request_body_bytes=1024)

    response = await client.post(
        COMPARISON, data=body(processing_mode="immediate"), headers=JSON_HEADERS
    )

    assert response.status_code == 200


# (method, path, raw body or None, status, code, field or None)
OTHER_CASES: dict[str, tuple[str, str, bytes | None, int, str, str | None]] = {
    "unknown_route": ("GET", "/api/v1/nothing-here", None, 404, "NOT_FOUND", None),
    "wrong_method": ("GET", COMPARISON, None, 405, "METHOD_NOT_ALLOWED", None),
    "wrong_method_on_status": (
        "POST",
        f"/api/v1/status/{uuid.uuid4()}",
        b"{}",
        405,
        "METHOD_NOT_ALLOWED",
        None,
    ),
    "malformed_queue_id": ("GET", "/api/v1/status/123", None, 400, "VALIDATION_ERROR", "queue_id"),
    "unknown_queue_id": ("GET", f"/api/v1/status/{uuid.uuid4()}", None, 404, "NOT_FOUND", None),
    "unknown_provider_test": (
        "POST",
        "/api/v1/providers/nope/test",
        None,
        400,
        "UNKNOWN_PROVIDER",
        "provider",
    ),
    "fault_rate_out_of_range": (
        "POST",
        "/api/v1/dev/mock-fault",
        b'{"error_rate": 2}',
        400,
        "VALIDATION_ERROR",
        "error_rate",
    ),
    "fault_kind_unknown": (
        "POST",
        "/api/v1/dev/mock-fault",
        b'{"error_rate": 1, "error_kind": "meteor"}',
        400,
        "VALIDATION_ERROR",
        "error_kind",
    ),
    "fault_empty_body": ("POST", "/api/v1/dev/mock-fault", b"", 400, "VALIDATION_ERROR", None),
}


@pytest.mark.parametrize(
    ("method", "path", "raw", "status", "code", "field"),
    list(OTHER_CASES.values()),
    ids=list(OTHER_CASES),
)
async def test_other_endpoints_refuse_bad_input_in_the_error_shape(
    client: Client,
    method: str,
    path: str,
    raw: bytes | None,
    status: int,
    code: str,
    field: str | None,
):
    response = await getattr(client, method.lower())(path, data=raw or b"", headers=JSON_HEADERS)

    error = await assert_error_shape(response, status, code)
    if field is not None:
        assert field in error["message"], error["message"]
        assert error["details"]["field"] == field


class ExplodingOrchestrator(ComparisonOrchestrator):
    """An orchestrator whose request path crashes with an unexpected exception."""

    def __init__(self) -> None:
        pass

    async def submit(self, request: ComparisonRequest, **_: object) -> Completed | Queued:
        raise RuntimeError("secret internal detail")


class ExplodingDeps(Provider):
    scope = Scope.APP

    @provide
    def orchestrator(self) -> ComparisonOrchestrator:
        return ExplodingOrchestrator()


async def test_unexpected_exception_is_a_logged_500_in_the_error_shape(
    start_app: StartApp, caplog: pytest.LogCaptureFixture
):
    client = await start_app(ExplodingDeps(), worker_enabled=False)
    correlation_id = str(uuid.uuid4())

    with caplog.at_level(logging.ERROR):
        response = await client.post(
            COMPARISON, data=body(correlation_id=correlation_id), headers=JSON_HEADERS
        )

    error = await assert_error_shape(response, 500, "INTERNAL_ERROR")
    assert error["correlation_id"] == correlation_id
    assert "secret internal detail" not in error["message"]
    logged = [
        r
        for r in caplog.records
        if r.exc_info and isinstance(r.exc_info[1], RuntimeError) and correlation_id in r.message
    ]
    assert len(logged) == 1
    assert logged[0].levelno == logging.ERROR
