"""The public HTTP contract (design/api.md) over the Quart test client, with the mock provider."""

from __future__ import annotations

import asyncio
import random
import re
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from dishka import Provider, Scope, provide
from prometheus_client.parser import text_string_to_metric_families
from quart.typing import TestClientProtocol as Client

from common_core.api_models import LLMConfigOverrides
from common_core.pass_through import PassThrough
from services.llm_provider_service.models import ComparisonPrompt, Judgement
from services.llm_provider_service.providers.mock import MockProvider
from services.llm_provider_service.settings import MockSettings, Settings
from tests.integration.conftest import StartApp

COMPARISON = "/api/v1/comparison"
PROVIDERS = "/api/v1/providers"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
RESULT_FIELDS = {
    "request_id",
    "correlation_id",
    "winner",
    "justification",
    "confidence",
    "provider",
    "model",
    "response_time_ms",
    "token_usage",
    "cost_estimate",
    "trace_id",
    *PassThrough.model_fields,  # the caller's own fields, echoed: metadata
    "served_from_cache",
    "provider_request_id",
    "completed_at",
    "presentation_order",
}
QUEUED_FIELDS = {
    "queue_id",
    "correlation_id",
    "status",
    "status_url",
    "queued_at",
    "expires_at",
    "position_in_queue",
    "estimated_wait_seconds",
}
STATUS_FIELDS = {
    "queue_id",
    "correlation_id",
    "status",
    "queued_at",
    "updated_at",
    "expires_at",
    "attempts",
    "position_in_queue",
    "result",
    "error",
}
ALL_OVERRIDES: dict[str, Any] = {
    "provider_override": "mock",
    "model_override": "mock-rater-override-7",
    "temperature_override": 0.3,
    "max_tokens_override": 321,
    "system_prompt_override": "You are a strict examiner.",
    "reasoning_effort": "high",
    "output_verbosity": "low",
}
METADATA: dict[str, Any] = {
    "cj_batch_id": "batch-42",
    "pair": [3, 17],
    "nested": {"weight": 1.5, "flag": True, "none": None},
    "unicode": "Ämne: förståelse ✓",
}


# -- helpers ------------------------------------------------------------------------------


def comparison(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "user_prompt": "Which essay argues its thesis better?",
        "essay_a": "Essay A argues carefully, with evidence.",
        "essay_b": "Essay B asserts loudly, without evidence.",
    }
    body.update(fields)
    return body


async def post_comparison(
    client: Client, *, headers: dict[str, str] | None = None, **fields: Any
) -> Any:
    return await client.post(COMPARISON, json=comparison(**fields), headers=headers or {})


async def set_fault(client: Client, rate: float, kind: str = "server_error") -> None:
    response = await client.post(
        "/api/v1/dev/mock-fault", json={"error_rate": rate, "error_kind": kind}
    )
    assert response.status_code == 200


async def wait_for_status(
    client: Client, url: str, wanted: set[str], within: float = 5.0
) -> dict[str, Any]:
    """Poll `url` until its status is in `wanted`; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        response = await client.get(url)
        assert response.status_code == 200
        body: dict[str, Any] = await response.get_json()
        if body["status"] in wanted:
            return body
        assert time.monotonic() < deadline, f"still {body['status']} after {within}s: {body}"
        await asyncio.sleep(0.02)


async def providers_by_name(client: Client) -> dict[str, dict[str, Any]]:
    response = await client.get(PROVIDERS)
    assert response.status_code == 200
    body = await response.get_json()
    return {p["name"]: p for p in body["providers"]}


async def metrics_text(client: Client) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    text: str = await response.get_data(as_text=True)
    return text


def metric_sum(text: str, sample_name: str, **labels: str) -> float:
    """Sum of the samples called `sample_name` whose labels include `labels`."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == sample_name and labels.items() <= sample.labels.items()
    )


async def queued_total(client: Client) -> float:
    text = await metrics_text(client)
    return metric_sum(text, "llm_provider_comparison_requests_total", outcome="queued")


async def mock_calls_total(client: Client) -> float:
    text = await metrics_text(client)
    return metric_sum(text, "llm_provider_provider_calls_total", provider="mock")


async def queue_depth(client: Client) -> int:
    response = await client.get("/healthz")
    depth: int = (await response.get_json())["queue_depth"]
    return depth


async def open_mock_breaker(client: Client) -> None:
    """Fail the mock until its breaker opens (threshold 3 in the test settings)."""
    await set_fault(client, 1.0)
    for _ in range(3):
        response = await post_comparison(client, processing_mode="immediate")
        assert response.status_code == 503
    assert (await providers_by_name(client))["mock"]["circuit_breaker_state"] == "open"


def timestamp(value: Any) -> datetime:
    assert isinstance(value, str)
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, f"{value} has no time zone"
    return parsed


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def assert_result_shape(body: dict[str, Any], *, metadata: dict[str, Any] | None = None) -> None:
    assert body.keys() >= RESULT_FIELDS, RESULT_FIELDS - body.keys()
    uuid.UUID(body["request_id"])
    uuid.UUID(body["correlation_id"])
    assert body["winner"] in {"Essay A", "Essay B"}
    assert isinstance(body["justification"], str)
    assert 0 < len(body["justification"]) <= 500
    assert is_int(body["confidence"])
    assert 1 <= body["confidence"] <= 5
    assert body["provider"] == "mock"
    assert isinstance(body["model"], str)
    assert body["model"]
    assert is_int(body["response_time_ms"])
    assert body["response_time_ms"] >= 0
    usage = body["token_usage"]
    for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
        assert is_int(usage[name]), name
        assert usage[name] >= 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert body["cost_estimate"] is None or isinstance(body["cost_estimate"], int | float)
    assert isinstance(body["trace_id"], str)
    assert body["trace_id"]
    assert body["metadata"] == (metadata if metadata is not None else {})
    assert body["served_from_cache"] is False
    assert isinstance(body["provider_request_id"], str)
    assert body["provider_request_id"]
    timestamp(body["completed_at"])


def assert_queued_shape(response: Any, body: dict[str, Any]) -> None:
    assert response.status_code == 202
    assert body.keys() >= QUEUED_FIELDS, QUEUED_FIELDS - body.keys()
    queue_id = uuid.UUID(body["queue_id"])
    uuid.UUID(body["correlation_id"])
    assert body["status"] == "queued"
    assert body["status_url"] == f"/api/v1/status/{queue_id}"
    assert timestamp(body["expires_at"]) > timestamp(body["queued_at"])
    position = body["position_in_queue"]
    assert position is None or (is_int(position) and position >= 1)
    wait = body["estimated_wait_seconds"]
    assert wait is None or isinstance(wait, int | float)
    retry_after = response.headers.get("Retry-After")
    assert retry_after is not None, "a 202 must carry Retry-After"
    assert int(retry_after) >= 1


async def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status
    assert response.content_type == "application/json"
    body = await response.get_json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "correlation_id", "details"}
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["details"], dict)
    uuid.UUID(error["correlation_id"])
    return error


# -- POST /api/v1/comparison ---------------------------------------------------------------


async def test_immediate_comparison_returns_every_result_field(client: Client):
    response = await post_comparison(client, processing_mode="immediate", metadata=METADATA)

    assert response.status_code == 200
    assert response.content_type == "application/json"
    body = await response.get_json()
    assert_result_shape(body, metadata=METADATA)
    assert response.headers["X-Correlation-ID"] == body["correlation_id"]


async def test_default_mode_answers_now_while_the_provider_is_up(client: Client):
    response = await post_comparison(client)

    assert response.status_code == 200
    assert_result_shape(await response.get_json())


@pytest.mark.parametrize("mode", ["immediate", "queue_if_unavailable", "async"])
async def test_supplied_correlation_id_is_echoed(client: Client, mode: str):
    correlation_id = str(uuid.uuid4())

    response = await post_comparison(client, processing_mode=mode, correlation_id=correlation_id)

    body = await response.get_json()
    assert body["correlation_id"] == correlation_id
    assert response.headers["X-Correlation-ID"] == correlation_id
    if response.status_code == 202:
        status = await wait_for_status(client, body["status_url"], {"completed"})
        assert status["correlation_id"] == correlation_id
        assert status["result"]["correlation_id"] == correlation_id


async def test_correlation_id_is_generated_when_absent(client: Client):
    first = await post_comparison(client, processing_mode="immediate")
    second = await post_comparison(client, processing_mode="immediate")

    ids = [(await r.get_json())["correlation_id"] for r in (first, second)]
    assert [str(uuid.UUID(i)) for i in ids] == ids
    assert ids[0] != ids[1]
    assert first.headers["X-Correlation-ID"] == ids[0]


async def test_correlation_header_is_adopted_when_the_body_has_none(client: Client):
    correlation_id = str(uuid.uuid4())

    response = await post_comparison(
        client, processing_mode="immediate", headers={"X-Correlation-ID": correlation_id}
    )

    assert (await response.get_json())["correlation_id"] == correlation_id


async def test_traceparent_trace_id_becomes_the_result_trace_id(client: Client):
    response = await post_comparison(
        client, processing_mode="immediate", headers={"traceparent": TRACEPARENT}
    )

    assert (await response.get_json())["trace_id"] == TRACE_ID


async def test_traceparent_trace_id_survives_the_queue(client: Client):
    response = await post_comparison(
        client, processing_mode="async", headers={"traceparent": TRACEPARENT}
    )

    status = await wait_for_status(client, (await response.get_json())["status_url"], {"completed"})
    assert status["result"]["trace_id"] == TRACE_ID


async def test_trace_id_is_generated_without_traceparent(client: Client):
    response = await post_comparison(client, processing_mode="immediate")

    assert re.fullmatch(r"[0-9a-f]{32}", (await response.get_json())["trace_id"])


async def test_async_mode_queues_although_the_provider_is_up_then_completes(
    client: Client,
):
    correlation_id = str(uuid.uuid4())

    response = await post_comparison(
        client, processing_mode="async", metadata=METADATA, correlation_id=correlation_id
    )

    queued = await response.get_json()
    assert_queued_shape(response, queued)
    assert response.headers["Location"] == queued["status_url"]
    status = await wait_for_status(client, queued["status_url"], {"completed", "failed"})
    assert status["status"] == "completed"
    assert status.keys() >= STATUS_FIELDS
    assert status["queue_id"] == queued["queue_id"]
    assert status["attempts"] == 1
    assert status["error"] is None
    assert status["position_in_queue"] is None
    assert_result_shape(status["result"], metadata=METADATA)
    assert status["result"]["request_id"] == queued["queue_id"]
    assert status["result"]["correlation_id"] == correlation_id


async def test_queued_request_reports_its_place_ttl_and_status(start_app: StartApp):
    client = await start_app(worker_enabled=False)

    first = await post_comparison(client, processing_mode="async")
    second = await post_comparison(client, processing_mode="async", ttl_seconds=120)

    one, two = await first.get_json(), await second.get_json()
    assert_queued_shape(first, one)
    assert_queued_shape(second, two)
    assert (one["position_in_queue"], two["position_in_queue"]) == (1, 2)
    # Float epoch seconds may round the two instants a microsecond apart.
    ttl_one = timestamp(one["expires_at"]) - timestamp(one["queued_at"])
    ttl_two = timestamp(two["expires_at"]) - timestamp(two["queued_at"])
    assert abs(ttl_one - timedelta(hours=4)) <= timedelta(milliseconds=1)
    assert abs(ttl_two - timedelta(seconds=120)) <= timedelta(milliseconds=1)
    status = await (await client.get(two["status_url"])).get_json()
    assert status.keys() >= STATUS_FIELDS
    assert status["status"] == "queued"
    assert status["position_in_queue"] == 2
    assert status["attempts"] == 0
    assert status["result"] is None
    assert status["error"] is None
    assert status["correlation_id"] == two["correlation_id"]
    assert status["expires_at"] == two["expires_at"]
    timestamp(status["updated_at"])


async def test_immediate_mode_with_the_provider_down_is_503_and_nothing_is_queued(
    client: Client,
):
    await set_fault(client, 1.0, "server_error")

    response = await post_comparison(client, processing_mode="immediate")

    error = await assert_error(response, 503, "PROVIDER_UNAVAILABLE")
    assert error["details"]["provider"] == "mock"
    assert await queued_total(client) == 0
    assert await queue_depth(client) == 0


async def test_immediate_mode_503_carries_retry_after(client: Client):
    await set_fault(client, 1.0, "server_error")

    response = await post_comparison(client, processing_mode="immediate")

    assert response.status_code == 503
    assert "Retry-After" in response.headers
    assert int(response.headers["Retry-After"]) >= 1


async def test_immediate_mode_timeout_is_504(client: Client):
    await set_fault(client, 1.0, "timeout")

    response = await post_comparison(client, processing_mode="immediate")

    await assert_error(response, 504, "PROVIDER_TIMEOUT")
    assert await queued_total(client) == 0


@pytest.mark.parametrize("kind", ["server_error", "rate_limit", "timeout", "connection"])
async def test_queue_if_unavailable_queues_retryable_failures(client: Client, kind: str):
    await set_fault(client, 1.0, kind)

    response = await post_comparison(client, processing_mode="queue_if_unavailable")

    assert_queued_shape(response, await response.get_json())
    assert await queued_total(client) == 1


async def test_queue_if_unavailable_completes_once_the_provider_recovers(
    client: Client,
):
    await set_fault(client, 1.0, "server_error")
    response = await post_comparison(
        client, processing_mode="queue_if_unavailable", metadata=METADATA
    )
    queued = await response.get_json()
    assert_queued_shape(response, queued)

    await set_fault(client, 0.0)

    status = await wait_for_status(client, queued["status_url"], {"completed", "failed"})
    assert status["status"] == "completed"
    assert status["attempts"] >= 1
    assert_result_shape(status["result"], metadata=METADATA)
    assert status["result"]["correlation_id"] == queued["correlation_id"]


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("auth", "PROVIDER_AUTH_ERROR"),
        ("bad_request", "PROVIDER_BAD_REQUEST"),
        ("invalid_response", "INVALID_PROVIDER_RESPONSE"),
    ],
)
async def test_queue_if_unavailable_does_not_queue_non_retryable_failures(
    client: Client, kind: str, code: str
):
    await set_fault(client, 1.0, kind)

    response = await post_comparison(client, processing_mode="queue_if_unavailable")

    error = await assert_error(response, 502, code)
    assert error["details"]["provider"] == "mock"
    assert await queued_total(client) == 0
    assert await queue_depth(client) == 0


async def test_auth_failures_do_not_open_the_breaker(client: Client):
    await set_fault(client, 1.0, "auth")

    for _ in range(4):
        response = await post_comparison(client, processing_mode="immediate")
        assert response.status_code == 502

    assert (await providers_by_name(client))["mock"]["circuit_breaker_state"] == "closed"


async def test_breaker_opens_at_the_threshold_then_requests_queue_without_a_call(
    start_app: StartApp,
):
    client = await start_app(circuit_breaker_reset_timeout_seconds=60.0)
    await open_mock_breaker(client)
    mock = (await providers_by_name(client))["mock"]
    assert mock["available"] is False
    assert mock["last_failure_at"] is not None
    calls_before = await mock_calls_total(client)
    # A call now would succeed, so a 202 proves that no call was made.
    await set_fault(client, 0.0)

    response = await post_comparison(client, processing_mode="queue_if_unavailable")

    queued = await response.get_json()
    assert_queued_shape(response, queued)
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert await mock_calls_total(client) == calls_before
    status = await (await client.get(queued["status_url"])).get_json()
    assert (status["status"], status["attempts"]) == ("queued", 0)
    assert (await providers_by_name(client))["mock"]["queued_count"] == 1


async def test_immediate_mode_with_an_open_breaker_is_503_with_retry_after(start_app: StartApp):
    client = await start_app(circuit_breaker_reset_timeout_seconds=60.0)
    await open_mock_breaker(client)
    await set_fault(client, 0.0)

    response = await post_comparison(client, processing_mode="immediate")

    error = await assert_error(response, 503, "PROVIDER_UNAVAILABLE")
    assert error["details"]["reason"] == "circuit_open"
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert await queued_total(client) == 0


async def test_overrides_shape_the_queued_result(client: Client):
    response = await post_comparison(
        client, processing_mode="async", llm_config_overrides=ALL_OVERRIDES
    )

    status = await wait_for_status(client, (await response.get_json())["status_url"], {"completed"})
    assert status["result"]["model"] == ALL_OVERRIDES["model_override"]
    assert status["result"]["provider"] == "mock"


class RecordingMockProvider(MockProvider):
    """The mock provider, recording what each call was asked."""

    def __init__(self, config: MockSettings) -> None:
        super().__init__(config, random.Random(7))
        self.calls: list[tuple[ComparisonPrompt, LLMConfigOverrides]] = []

    async def compare(self, prompt: ComparisonPrompt, overrides: LLMConfigOverrides) -> Judgement:
        self.calls.append((prompt, overrides))
        return await super().compare(prompt, overrides)


class RecordingMockDeps(Provider):
    scope = Scope.APP

    def __init__(self, mock: RecordingMockProvider) -> None:
        super().__init__()
        self._mock = mock

    @provide
    def mock_provider(self) -> MockProvider:
        return self._mock


async def test_every_override_survives_the_queue(start_app: StartApp, settings: Settings):
    recorder = RecordingMockProvider(settings.mock)
    client = await start_app(RecordingMockDeps(recorder), settings=settings)

    response = await post_comparison(
        client, processing_mode="async", llm_config_overrides=ALL_OVERRIDES
    )

    await wait_for_status(client, (await response.get_json())["status_url"], {"completed"})
    assert len(recorder.calls) == 1
    prompt, overrides = recorder.calls[0]
    assert overrides.model_dump(mode="json") == ALL_OVERRIDES
    assert prompt.system_prompt == ALL_OVERRIDES["system_prompt_override"]


async def test_essays_are_placed_or_appended_never_dropped(start_app: StartApp, settings: Settings):
    recorder = RecordingMockProvider(settings.mock)
    client = await start_app(RecordingMockDeps(recorder), settings=settings)

    # As sent: this is about placement in the caller's order (swapped: tests/.../test_prompt.py).
    placed = await post_comparison(
        client,
        processing_mode="immediate",
        user_prompt="First {essay_b}, then {essay_a}.",
        essay_a="A {essay_b} with braces {}",
        essay_b="B text",
        essay_order="as_sent",
    )
    appended = await post_comparison(
        client, processing_mode="immediate", user_prompt="Which is better?", essay_order="as_sent"
    )

    assert (placed.status_code, appended.status_code) == (200, 200)
    assert recorder.calls[0][0].user_prompt == "First B text, then A {essay_b} with braces {}."
    appended_prompt = recorder.calls[1][0].user_prompt
    assert appended_prompt.startswith("Which is better?")
    assert "Essay A:\nEssay A argues carefully, with evidence." in appended_prompt
    assert "Essay B:\nEssay B asserts loudly, without evidence." in appended_prompt


async def test_full_queue_is_503_with_retry_after(start_app: StartApp):
    client = await start_app(worker_enabled=False, queue_max_size=1)
    assert (await post_comparison(client, processing_mode="async")).status_code == 202

    response = await post_comparison(client, processing_mode="async")

    await assert_error(response, 503, "QUEUE_FULL")
    assert int(response.headers["Retry-After"]) >= 1
    assert await queue_depth(client) == 1


async def test_a_queued_request_past_its_ttl_expires_with_an_error(start_app: StartApp):
    client = await start_app(circuit_breaker_reset_timeout_seconds=60.0)
    await open_mock_breaker(client)

    response = await post_comparison(client, processing_mode="queue_if_unavailable", ttl_seconds=1)

    queued = await response.get_json()
    assert_queued_shape(response, queued)
    status = await wait_for_status(client, queued["status_url"], {"expired"}, within=3.0)
    assert status["result"] is None
    assert status["error"]["code"] == "REQUEST_EXPIRED"
    assert status["error"]["message"]
    assert status["attempts"] == 0


async def test_idempotency_key_returns_the_same_request(start_app: StartApp):
    client = await start_app(worker_enabled=False)
    headers = {"Idempotency-Key": "cj-batch-42-pair-3-17"}

    first = await post_comparison(client, processing_mode="async", headers=headers)
    second = await post_comparison(client, processing_mode="async", headers=headers)

    assert (await second.get_json())["queue_id"] == (await first.get_json())["queue_id"]


async def test_idempotency_key_reused_with_another_body_is_409(start_app: StartApp):
    client = await start_app(worker_enabled=False)

    await post_comparison(client, processing_mode="async", idempotency_key="key-1")
    response = await post_comparison(
        client, processing_mode="async", idempotency_key="key-1", essay_a="Another essay."
    )

    await assert_error(response, 409, "IDEMPOTENCY_KEY_REUSED")


# -- GET / DELETE /api/v1/status/<queue_id> ------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_status_of_an_unknown_id_is_404(client: Client, method: str):
    unknown = uuid.uuid4()

    response = await getattr(client, method.lower())(f"/api/v1/status/{unknown}")

    error = await assert_error(response, 404, "NOT_FOUND")
    assert str(unknown) in error["message"]


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_status_of_a_malformed_id_is_400(client: Client, method: str):
    response = await getattr(client, method.lower())("/api/v1/status/not-a-uuid")

    error = await assert_error(response, 400, "VALIDATION_ERROR")
    assert "queue_id" in error["message"]
    assert error["details"]["field"] == "queue_id"


async def test_cancel_a_queued_request_then_cancel_again_is_409(start_app: StartApp):
    client = await start_app(worker_enabled=False)
    queued = await (await post_comparison(client, processing_mode="async")).get_json()
    url = queued["status_url"]

    cancelled = await client.delete(url)

    assert cancelled.status_code == 200
    body = await cancelled.get_json()
    assert (body["queue_id"], body["status"]) == (queued["queue_id"], "cancelled")
    assert (body["result"], body["position_in_queue"]) == (None, None)
    status = await (await client.get(url)).get_json()
    assert status["status"] == "cancelled"
    await assert_error(await client.delete(url), 409, "CONFLICT")
    assert await queue_depth(client) == 0


async def test_cancel_after_completion_is_409(client: Client):
    queued = await (await post_comparison(client, processing_mode="async")).get_json()
    await wait_for_status(client, queued["status_url"], {"completed"})

    response = await client.delete(queued["status_url"])

    await assert_error(response, 409, "CONFLICT")
    status = await (await client.get(queued["status_url"])).get_json()
    assert status["status"] == "completed"


async def test_a_failed_queued_request_reports_its_error(client: Client):
    await set_fault(client, 1.0, "auth")

    queued = await (await post_comparison(client, processing_mode="async")).get_json()

    status = await wait_for_status(client, queued["status_url"], {"completed", "failed"})
    assert status["status"] == "failed"
    assert status["result"] is None
    assert status["error"]["code"] == "PROVIDER_AUTH_ERROR"
    assert isinstance(status["error"]["message"], str)


# -- providers -----------------------------------------------------------------------------


async def test_providers_lists_every_provider_and_its_state(client: Client):
    providers = await providers_by_name(client)

    assert set(providers) == {"anthropic", "openai", "google", "openrouter", "mock"}
    for name, p in providers.items():
        assert isinstance(p["enabled"], bool), name
        assert isinstance(p["configured"], bool), name
        assert isinstance(p["available"], bool), name
        assert p["circuit_breaker_state"] in {"closed", "open", "half_open"}
        assert isinstance(p["default_model"], str)
        assert p["default_model"]
        assert "last_success_at" in p
        assert "last_failure_at" in p
        assert is_int(p["queued_count"])
    mock = providers["mock"]
    assert (mock["configured"], mock["available"], mock["circuit_breaker_state"]) == (
        True,
        True,
        "closed",
    )
    assert (providers["anthropic"]["configured"], providers["anthropic"]["available"]) == (
        False,
        False,
    )


async def test_providers_records_the_last_success(client: Client):
    await post_comparison(client, processing_mode="immediate")

    mock = (await providers_by_name(client))["mock"]

    timestamp(mock["last_success_at"])
    assert mock["last_failure_at"] is None


async def test_provider_test_call_to_the_mock_succeeds(client: Client):
    response = await client.post("/api/v1/providers/mock/test")

    assert response.status_code == 200
    body = await response.get_json()
    assert set(body) == {"success", "provider", "message", "response_time_ms"}
    assert (body["success"], body["provider"]) == (True, "mock")
    assert isinstance(body["message"], str)
    assert is_int(body["response_time_ms"])


async def test_provider_test_call_to_an_unknown_provider_is_400(client: Client):
    response = await client.post("/api/v1/providers/nope/test")

    error = await assert_error(response, 400, "UNKNOWN_PROVIDER")
    assert "nope" in error["message"]
    assert error["details"]["field"] == "provider"


async def test_provider_test_call_to_an_unconfigured_provider_fails_softly(
    client: Client,
):
    response = await client.post("/api/v1/providers/anthropic/test")

    assert response.status_code == 200
    body = await response.get_json()
    assert (body["success"], body["provider"]) == (False, "anthropic")
    assert "PROVIDER_NOT_CONFIGURED" in body["message"]


# -- health, metrics, spec -----------------------------------------------------------------


async def test_healthz_is_healthy_normally(client: Client):
    response = await client.get("/healthz")

    assert response.status_code == 200
    body = await response.get_json()
    assert body["status"] == "healthy"
    assert body["environment"] == "testing"
    assert body["queue_depth"] == 0
    assert body["dependencies"]["queue"]["status"] == "healthy"
    assert body["dependencies"]["provider:mock"]["status"] == "healthy"


async def test_healthz_is_degraded_while_the_mock_breaker_is_open(start_app: StartApp):
    client = await start_app(circuit_breaker_reset_timeout_seconds=60.0)
    await open_mock_breaker(client)

    response = await client.get("/healthz")

    assert response.status_code == 200
    body = await response.get_json()
    assert body["status"] == "degraded"
    assert body["dependencies"]["provider:mock"]["status"] == "degraded"
    assert "open" in body["dependencies"]["provider:mock"]["detail"]


async def test_healthz_is_unhealthy_without_the_default_provider(start_app: StartApp):
    client = await start_app(default_llm_provider="anthropic")

    response = await client.get("/healthz")

    assert response.status_code == 503
    body = await response.get_json()
    assert body["status"] == "unhealthy"
    assert body["dependencies"]["provider:anthropic"]["status"] == "unhealthy"


async def test_metrics_are_prometheus_text_and_never_count_cache_hits(
    client: Client,
):
    for mode in ("immediate", "immediate", "async"):
        await post_comparison(client, processing_mode=mode)
    await client.get("/healthz")

    response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    text = await response.get_data(as_text=True)
    names = {family.name for family in text_string_to_metric_families(text)}
    assert names
    # Ours are `llm_provider_*`; beside them only prometheus-client's standard process and
    # platform collectors (`process_*`, `python_info`).
    ours = {name for name in names if name.startswith("llm_provider_")}
    standard = {n for n in names - ours if n.startswith("process_") or n == "python_info"}
    assert ours
    assert names == ours | standard, names - ours - standard
    assert "llm_provider_cache_served_responses_total 0.0" in text.splitlines()
    requests = metric_sum(
        text,
        "llm_provider_http_requests_total",
        method="POST",
        route="/api/v1/comparison",
        status="200",
    )
    assert requests == 2
    completed = metric_sum(
        text, "llm_provider_comparison_requests_total", mode="immediate", outcome="completed"
    )
    assert completed == 2


async def test_openapi_spec_documents_every_endpoint(client: Client):
    response = await client.get("/openapi.json")

    assert response.status_code == 200
    spec = await response.get_json()
    paths = spec["paths"]
    expected = {
        "/api/v1/comparison": {"post"},
        "/api/v1/status/{queue_id}": {"get", "delete"},
        "/api/v1/providers": {"get"},
        "/api/v1/providers/{provider}/test": {"post"},
        "/healthz": {"get"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert methods <= paths[path].keys(), (path, paths[path].keys())
    post = paths["/api/v1/comparison"]["post"]
    assert {"200", "202", "400", "503"} <= post["responses"].keys()
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert {
        "user_prompt",
        "essay_a",
        "essay_b",
        "llm_config_overrides",
        "correlation_id",
        "user_id",
        "metadata",
        "processing_mode",
        "cache_mode",
        "priority",
        "ttl_seconds",
        "callback_topic",
        "callback_url",
    } <= schema["properties"].keys()


async def test_docs_are_human_readable_html(client: Client):
    response = await client.get("/docs")

    assert response.status_code == 200
    assert response.content_type.startswith("text/html")
    assert "openapi.json" in await response.get_data(as_text=True)


async def test_a_request_without_a_mode_gets_the_default_processing_mode(start_app: StartApp):
    client = await start_app(default_processing_mode="async")

    unnamed = await post_comparison(client)  # `comparison()` sends no processing_mode
    named = await post_comparison(client, processing_mode="immediate")

    assert unnamed.status_code == 202
    assert named.status_code == 200
