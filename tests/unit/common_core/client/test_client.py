"""`LLMProviderClient` against scripted answers (httpx.MockTransport): what it sends, what
it retries, and what it raises. The service itself is in tests/integration/client/."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from common_core.api_models import ComparisonRequest
from common_core.client import (
    LLMProviderClient,
    LLMProviderServiceError,
    ServiceUnavailableError,
    TransportError,
)
from common_core.client._http import ServiceHttp

BASE = "http://llm-provider.test:8080"
REQUEST = ComparisonRequest(user_prompt="Which is better?", essay_a="A", essay_b="B")


def result_body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "request_id": str(uuid.uuid4()),
        "correlation_id": str(uuid.uuid4()),
        "winner": "Essay A",
        "justification": "A is better.",
        "confidence": 3,
        "provider": "mock",
        "model": "mock-rater-1",
        "response_time_ms": 5,
        "token_usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        "completed_at": datetime.now(UTC).isoformat(),
    }
    body.update(fields)
    return body


def error_body(code: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": code.lower(), "details": {}}}


class Script:
    """Answers requests from a list (a response, or an exception to raise); records them."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def client(script: Callable[[httpx.Request], httpx.Response], **options: Any):
    http = httpx.AsyncClient(transport=httpx.MockTransport(script))
    values: dict[str, Any] = {"poll_interval": 0.01, "max_poll_interval": 0.05}
    values.update(options)
    return http, LLMProviderClient(BASE, http=http, rng=random.Random(0), **values)


async def test_only_the_fields_set_are_sent_with_key_correlation_and_bearer():
    script = Script(httpx.Response(200, json=result_body()))
    correlation_id = uuid.uuid4()
    request = ComparisonRequest(
        user_prompt="Which?",
        essay_a="A",
        essay_b="B",
        correlation_id=correlation_id,
        llm_config_overrides={"model_override": "gpt-5.1"},
    )
    http, llm = client(script, api_key="secret-key")

    async with http, llm:
        await llm.compare(request, idempotency_key="cj-42")

    sent = script.requests[0]
    assert sent.url == f"{BASE}/api/v1/comparison"
    assert json.loads(sent.content) == {
        "user_prompt": "Which?",
        "essay_a": "A",
        "essay_b": "B",
        "correlation_id": str(correlation_id),
        "llm_config_overrides": {"model_override": "gpt-5.1"},
    }
    assert sent.headers["Idempotency-Key"] == "cj-42"
    assert sent.headers["X-Correlation-ID"] == str(correlation_id)
    assert sent.headers["Authorization"] == "Bearer secret-key"


async def test_a_conflict_with_retry_after_and_a_proxy_502_are_retried_with_one_key():
    script = Script(
        httpx.Response(409, json=error_body("CONFLICT"), headers={"Retry-After": "0"}),
        httpx.Response(502, text="<html>Bad Gateway</html>"),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.Response(200, json=result_body()),
    )
    http, llm = client(script)

    async with http, llm:
        result = await llm.compare(REQUEST)

    assert result.winner == "Essay A"
    keys = {request.headers["Idempotency-Key"] for request in script.requests}
    assert len(script.requests) == 5
    assert len(keys) == 1
    assert uuid.UUID(keys.pop()).version == 4


async def test_a_500_is_not_retried():
    script = Script(httpx.Response(500, json=error_body("INTERNAL_ERROR")))
    http, llm = client(script)

    async with http, llm:
        with pytest.raises(LLMProviderServiceError) as raised:
            await llm.compare(REQUEST)

    assert (raised.value.code, raised.value.status) == ("INTERNAL_ERROR", 500)
    assert len(script.requests) == 1


async def test_no_answer_after_the_retries_is_a_transport_error():
    script = Script(*[httpx.ConnectError("refused") for _ in range(3)])
    http, llm = client(script, retries=2)

    async with http, llm:
        with pytest.raises(TransportError) as raised:
            await llm.compare(REQUEST)

    assert raised.value.code == "CONNECTION_ERROR"
    assert raised.value.status is None
    assert isinstance(raised.value.__cause__, httpx.ConnectError)
    assert len(script.requests) == 3


async def test_a_retry_that_would_miss_the_deadline_is_not_waited_for():
    script = Script(
        httpx.Response(503, json=error_body("QUEUE_UNAVAILABLE"), headers={"Retry-After": "30"})
    )
    http, llm = client(script)

    async with http, llm:
        started = time.monotonic()
        with pytest.raises(ServiceUnavailableError) as raised:
            await llm.compare(REQUEST, deadline=5.0)

    assert time.monotonic() - started < 1.0
    assert raised.value.retry_after == 30.0
    assert len(script.requests) == 1


async def test_a_200_whose_body_is_not_a_result_is_an_unexpected_response():
    script = Script(httpx.Response(200, json={"hello": "world"}))
    http, llm = client(script)

    async with http, llm:
        with pytest.raises(LLMProviderServiceError) as raised:
            await llm.compare(REQUEST)

    assert raised.value.code == "UNEXPECTED_RESPONSE"


async def test_the_request_field_key_is_used_and_a_different_argument_refused():
    script = Script(httpx.Response(200, json=result_body()))
    request = REQUEST.model_copy(update={"idempotency_key": "from-field"})
    http, llm = client(script)

    async with http, llm:
        await llm.compare(request)
        with pytest.raises(ValueError, match="idempotency_key"):
            await llm.compare(request, idempotency_key="other")

    assert script.requests[0].headers["Idempotency-Key"] == "from-field"
    assert len(script.requests) == 1


@pytest.mark.parametrize(
    "options",
    [
        {"timeout": 0},
        {"poll_interval": 0},
        {"poll_interval": 5, "max_poll_interval": 1},
        {"retries": -1},
    ],
)
def test_impossible_options_are_refused(options: dict[str, Any]):
    with pytest.raises(ValueError, match="need"):
        LLMProviderClient(BASE, **options)


@pytest.mark.parametrize("base_url", ["llm-provider:8080", "ftp://host", "http://"])
def test_a_base_url_that_is_not_http_is_refused(base_url: str):
    with pytest.raises(ValueError, match="base_url"):
        LLMProviderClient(base_url)


@pytest.mark.parametrize(
    ("base_url", "ws_url"),
    [
        ("http://svc:8080", "ws://svc:8080/api/v1/ws/status/{}"),
        ("https://gw.example.org/llm/", "wss://gw.example.org/llm/api/v1/ws/status/{}"),
    ],
)
async def test_the_websocket_url_follows_the_base_url(base_url: str, ws_url: str):
    queue_id = uuid.uuid4()
    async with httpx.AsyncClient() as http:
        service = ServiceHttp(http, base_url, api_key=None, timeout=1.0)

    assert service.ws_url(queue_id) == ws_url.format(queue_id)


async def test_the_client_closes_its_own_pool_but_not_an_injected_one():
    injected = httpx.AsyncClient()
    async with LLMProviderClient(BASE, http=injected):
        pass
    owned = LLMProviderClient(BASE)
    async with owned:
        pass

    assert not injected.is_closed
    assert owned._http.is_closed
    await injected.aclose()
