"""GeminiProvider with the real google-genai SDK against the fake upstream over real HTTP."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from pydantic import SecretStr

from common_core.api_models import JUSTIFICATION_MAX_CHARS, LLMConfigOverrides
from common_core.enums import EssayWinner, LLMProviderType, OutputVerbosity, ReasoningEffort
from services.llm_provider_service.errors import (
    InvalidProviderResponseError,
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from services.llm_provider_service.models import ComparisonPrompt, Judgement
from services.llm_provider_service.providers.gemini_provider import GeminiProvider
from services.llm_provider_service.providers.judgement import JUDGEMENT_SCHEMA
from services.llm_provider_service.settings import ProviderSettings
from tests.support.fake_vendors import (
    FakeUpstream,
    camel_schema,
    clean_fake_upstream,  # noqa: F401
    fake_upstream,  # noqa: F401
)

VENDOR = "google"
MODEL = "gemini-2.5-flash"
TIMEOUT_SECONDS = 1.0
PROMPT = ComparisonPrompt.plain(
    system_prompt="You are an experienced teacher comparing two student essays.",
    user_prompt="Which essay is better?\n\nEssay A:\nShort and clear.\n\nEssay B:\nLong, vague.",
)
NO_OVERRIDES = LLMConfigOverrides()


def settings(**values: Any) -> ProviderSettings:
    fields: dict[str, Any] = {
        "provider": LLMProviderType.GOOGLE,
        "api_key": SecretStr("test-key"),
        "base_url": None,
        "default_model": MODEL,
        "enabled": True,
        "timeout_seconds": TIMEOUT_SECONDS,
        **values,
    }
    return ProviderSettings(**fields)


def sdk_client(base_url: str) -> genai.Client:
    # No retry_options: the SDK then makes exactly one attempt. The timeout is in milliseconds.
    options = types.HttpOptions(base_url=base_url, timeout=round(TIMEOUT_SECONDS * 1000))
    return genai.Client(api_key="test-key", http_options=options)


async def close(sdk: genai.Client) -> None:
    await sdk.aio.aclose()
    sdk.close()


@pytest.fixture
def fake(clean_fake_upstream: FakeUpstream) -> FakeUpstream:  # noqa: F811
    return clean_fake_upstream


@pytest.fixture
async def client(fake: FakeUpstream) -> AsyncIterator[genai.Client]:
    sdk = sdk_client(fake.google_base_url)
    yield sdk
    await close(sdk)


def adapter(client: genai.Client, **values: Any) -> GeminiProvider:
    return GeminiProvider(client, settings(**values))


def sent(fake: FakeUpstream) -> dict[str, Any]:
    body = fake.last(VENDOR).json
    assert isinstance(body, dict)
    return body


def generation_config(fake: FakeUpstream) -> dict[str, Any]:
    """The request's generationConfig in camelCase (google-genai sends some keys snake_case)."""
    config = camel_schema(sent(fake)["generationConfig"])
    assert isinstance(config, dict)
    return config


def assert_valid(judgement: Judgement, model: str = MODEL) -> None:
    assert judgement.winner in (EssayWinner.ESSAY_A, EssayWinner.ESSAY_B)
    assert 0 < len(judgement.justification) <= JUSTIFICATION_MAX_CHARS
    assert 1 <= judgement.confidence <= 5
    assert judgement.model == model
    usage = judgement.token_usage
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0
    assert usage.total_tokens >= usage.prompt_tokens + usage.completion_tokens
    assert judgement.provider_request_id


# ---- answers and what the request carried -----------------------------------------------------


async def test_returns_a_valid_judgement_from_one_schema_constrained_call(
    fake: FakeUpstream, client: genai.Client
) -> None:
    provider = adapter(client)

    judgement = await provider.compare(PROMPT, NO_OVERRIDES)

    assert_valid(judgement)
    assert provider.provider is LLMProviderType.GOOGLE
    assert provider.default_model == MODEL
    assert len(fake.requests_for(VENDOR)) == 1
    assert fake.last(VENDOR).path == f"/v1/models/{MODEL}:generateContent"
    body = sent(fake)
    assert body["systemInstruction"]["parts"] == [{"text": PROMPT.system_prompt}]
    assert body["contents"] == [{"role": "user", "parts": [{"text": PROMPT.user_prompt}]}]
    assert "tools" not in body
    config = generation_config(fake)
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == camel_schema(JUDGEMENT_SCHEMA)
    assert "responseSchema" not in config
    assert config["maxOutputTokens"] == 1024
    assert config["thinkingConfig"] == {"thinkingBudget": 0}  # Flash can switch thinking off
    assert "temperature" not in config
    assert fake.last(VENDOR).headers["x-goog-api-key"] == "test-key"


async def test_every_applicable_override_reaches_the_request(
    fake: FakeUpstream, client: genai.Client
) -> None:
    overrides = LLMConfigOverrides(
        model_override="gemini-2.5-flash-lite",
        temperature_override=0.4,
        max_tokens_override=700,
        reasoning_effort=ReasoningEffort.NONE,
        output_verbosity=OutputVerbosity.LOW,  # no Gemini equivalent: ignored, not a 400
    )

    judgement = await adapter(client).compare(PROMPT, overrides)

    assert_valid(judgement, model="gemini-2.5-flash-lite")
    assert fake.last(VENDOR).path == "/v1/models/gemini-2.5-flash-lite:generateContent"
    config = generation_config(fake)
    assert config["temperature"] == 0.4
    assert config["maxOutputTokens"] == 700
    assert config["thinkingConfig"] == {"thinkingBudget": 0}
    assert "verbosity" not in str(config).lower()


async def test_repeated_system_prompt_reports_cached_tokens(
    fake: FakeUpstream, client: genai.Client
) -> None:
    provider = adapter(client)

    first = await provider.compare(PROMPT, NO_OVERRIDES)
    second = await provider.compare(PROMPT, NO_OVERRIDES)

    assert first.token_usage.cached_prompt_tokens == 0
    assert 0 < second.token_usage.cached_prompt_tokens <= second.token_usage.prompt_tokens
    assert first.provider_request_id != second.provider_request_id  # two fresh calls
    assert len(fake.requests_for(VENDOR)) == 2


# ---- thinking ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "effort", "budget"),
    [
        (MODEL, ReasoningEffort.LOW, 1024),
        (MODEL, ReasoningEffort.MEDIUM, 4096),
        (MODEL, ReasoningEffort.HIGH, 16384),
        (MODEL, ReasoningEffort.NONE, 0),
        ("gemini-2.5-pro", ReasoningEffort.HIGH, 16384),
        ("gemini-2.5-pro", ReasoningEffort.NONE, 1024),  # Pro cannot switch thinking off
        ("gemini-2.5-pro", None, 1024),
    ],
)
async def test_reasoning_effort_sets_the_thinking_budget(
    fake: FakeUpstream,
    client: genai.Client,
    model: str,
    effort: ReasoningEffort | None,
    budget: int,
) -> None:
    overrides = LLMConfigOverrides(model_override=model, reasoning_effort=effort)

    judgement = await adapter(client).compare(PROMPT, overrides)

    assert_valid(judgement, model=model)
    config = generation_config(fake)
    assert config["thinkingConfig"] == {"thinkingBudget": budget}
    assert config["maxOutputTokens"] == 1024 + budget  # thoughts count toward the cap


@pytest.mark.parametrize(
    ("model", "cap", "budget"),
    [
        (MODEL, 2048, 2048 - 256),
        (MODEL, 600, 0),  # too little room to think: switched off
        ("gemini-2.5-pro", 300, 128),  # Pro's minimum budget
    ],
)
async def test_thinking_budget_fits_inside_a_max_tokens_override(
    fake: FakeUpstream, client: genai.Client, model: str, cap: int, budget: int
) -> None:
    overrides = LLMConfigOverrides(
        model_override=model, reasoning_effort=ReasoningEffort.HIGH, max_tokens_override=cap
    )

    assert_valid(await adapter(client).compare(PROMPT, overrides), model=model)

    config = generation_config(fake)
    assert config["maxOutputTokens"] == cap
    assert config["thinkingConfig"] == {"thinkingBudget": budget}


# ---- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "error", "retryable", "status"),
    [
        ("server_error", ProviderUnavailableError, True, 500),
        ("unavailable", ProviderUnavailableError, True, 503),
        ("overloaded", ProviderUnavailableError, True, 503),
        ("auth", ProviderAuthError, False, 401),
        ("bad_request", ProviderBadRequestError, False, 400),
    ],
)
async def test_http_errors_map_to_service_errors_after_exactly_one_request(
    fake: FakeUpstream,
    client: genai.Client,
    kind: Any,
    error: type[ProviderError],
    retryable: bool,
    status: int,
) -> None:
    fake.fail(VENDOR, kind)

    with pytest.raises(error) as caught:
        await adapter(client).compare(PROMPT, NO_OVERRIDES)

    assert type(caught.value) is error
    assert caught.value.retryable is retryable
    assert caught.value.status == status
    assert caught.value.provider is LLMProviderType.GOOGLE
    assert isinstance(caught.value.__cause__, genai_errors.APIError)
    assert len(fake.requests_for(VENDOR)) == 1  # the SDK's own retries are off


async def test_rate_limit_is_retryable_and_carries_retry_after(
    fake: FakeUpstream, client: genai.Client
) -> None:
    fake.fail(VENDOR, "rate_limit")

    with pytest.raises(ProviderUnavailableError) as caught:
        await adapter(client).compare(PROMPT, NO_OVERRIDES)

    assert caught.value.retryable is True
    assert caught.value.reason == "rate_limited"
    assert caught.value.retry_after == pytest.approx(2.0)
    assert isinstance(caught.value.__cause__, genai_errors.ClientError)
    assert len(fake.requests_for(VENDOR)) == 1


async def test_a_hanging_upstream_is_a_timeout_after_one_request(
    fake: FakeUpstream, client: genai.Client
) -> None:
    fake.fail(VENDOR, "timeout")
    started = time.monotonic()

    with pytest.raises(ProviderTimeoutError) as caught:
        await adapter(client).compare(PROMPT, NO_OVERRIDES)

    assert caught.value.retryable is True
    assert time.monotonic() - started < TIMEOUT_SECONDS + 2
    assert len(fake.requests_for(VENDOR)) == 1


async def test_an_unreachable_upstream_is_a_connection_error() -> None:
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sdk = sdk_client(f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(ProviderUnavailableError) as caught:
            await adapter(sdk).compare(PROMPT, NO_OVERRIDES)
    finally:
        await close(sdk)

    assert caught.value.reason == "connection_error"
    assert caught.value.retryable is True


@pytest.mark.parametrize("kind", ["malformed", "empty"])
async def test_unusable_bodies_are_invalid_responses(
    fake: FakeUpstream, client: genai.Client, kind: Any
) -> None:
    fake.fail(VENDOR, kind)

    with pytest.raises(InvalidProviderResponseError) as caught:
        await adapter(client, invalid_response_reasks=1).compare(PROMPT, NO_OVERRIDES)

    assert caught.value.retryable is False
    assert len(fake.requests_for(VENDOR)) == 2  # the first answer and one re-ask


async def test_a_schema_violation_is_re_asked_once_and_then_accepted(
    fake: FakeUpstream, client: genai.Client
) -> None:
    fake.fail(VENDOR, "schema_violation", times=1)

    judgement = await adapter(client, invalid_response_reasks=1).compare(PROMPT, NO_OVERRIDES)

    assert_valid(judgement)
    records = fake.requests_for(VENDOR)
    assert [r.fault for r in records] == ["schema_violation", None]
    assert records[0].json == records[1].json  # the same question, asked afresh


@pytest.mark.parametrize("reasks", [0, 1, 2])
async def test_a_persistent_schema_violation_gives_up_after_the_re_asks(
    fake: FakeUpstream, client: genai.Client, reasks: int
) -> None:
    fake.fail(VENDOR, "schema_violation")

    with pytest.raises(InvalidProviderResponseError) as caught:
        await adapter(client, invalid_response_reasks=reasks).compare(PROMPT, NO_OVERRIDES)

    assert caught.value.retryable is False
    assert "schema" in caught.value.message
    assert len(fake.requests_for(VENDOR)) == 1 + reasks


async def test_no_more_calls_are_in_flight_than_max_concurrency(
    fake: FakeUpstream, client: genai.Client
) -> None:
    provider = adapter(client, max_concurrency=2)
    fake.fail(VENDOR, "timeout", times=2)  # the first two requests hang until they time out

    calls = [asyncio.create_task(provider.compare(PROMPT, NO_OVERRIDES)) for _ in range(4)]
    for _ in range(250):  # until both hanging requests arrived, at most 5 s
        if len(fake.requests_for(VENDOR)) >= 2:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(TIMEOUT_SECONDS / 2)
    in_flight = len(fake.requests_for(VENDOR))
    results = await asyncio.gather(*calls, return_exceptions=True)

    assert in_flight == 2  # the other two waited for a slot
    assert sum(isinstance(r, ProviderTimeoutError) for r in results) == 2
    assert sum(isinstance(r, Judgement) for r in results) == 2
    assert len(fake.requests_for(VENDOR)) == 4
