"""AnthropicProvider with the real anthropic SDK against the fake upstream over real HTTP."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest
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
from services.llm_provider_service.providers.anthropic_provider import AnthropicProvider
from services.llm_provider_service.providers.anthropic_request import THINKING_INSTRUCTION
from services.llm_provider_service.providers.judgement import (
    JUDGEMENT_SCHEMA,
    TOOL_DESCRIPTION,
    TOOL_NAME,
)
from services.llm_provider_service.settings import ProviderSettings
from tests.support.fake_upstream import (
    FakeUpstream,
    clean_fake_upstream,  # noqa: F401
    fake_upstream,  # noqa: F401
)

VENDOR = "anthropic"
MODEL = "claude-test-default"
TIMEOUT_SECONDS = 1.0
PROMPT = ComparisonPrompt.plain(
    system_prompt="You are an experienced teacher comparing two student essays.",
    user_prompt="Which essay is better?\n\nEssay A:\nShort and clear.\n\nEssay B:\nLong, vague.",
)
NO_OVERRIDES = LLMConfigOverrides()


def settings(**values: Any) -> ProviderSettings:
    fields: dict[str, Any] = {
        "provider": LLMProviderType.ANTHROPIC,
        "api_key": SecretStr("test-key"),
        "base_url": None,
        "default_model": MODEL,
        "enabled": True,
        "timeout_seconds": TIMEOUT_SECONDS,
        **values,
    }
    return ProviderSettings(**fields)


def sdk_client(base_url: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        api_key="test-key", base_url=base_url, max_retries=0, timeout=TIMEOUT_SECONDS
    )


@pytest.fixture
def fake(clean_fake_upstream: FakeUpstream) -> FakeUpstream:  # noqa: F811
    return clean_fake_upstream


@pytest.fixture
async def client(fake: FakeUpstream) -> AsyncIterator[anthropic.AsyncAnthropic]:
    sdk = sdk_client(fake.anthropic_base_url)
    yield sdk
    await sdk.close()


def adapter(
    client: anthropic.AsyncAnthropic, *, prompt_caching: bool = True, **values: Any
) -> AnthropicProvider:
    return AnthropicProvider(client, settings(**values), prompt_caching=prompt_caching)


def sent(fake: FakeUpstream) -> dict[str, Any]:
    body = fake.last(VENDOR).json
    assert isinstance(body, dict)
    return body


def assert_valid(judgement: Judgement, model: str = MODEL) -> None:
    assert judgement.winner in (EssayWinner.ESSAY_A, EssayWinner.ESSAY_B)
    assert 0 < len(judgement.justification) <= JUSTIFICATION_MAX_CHARS
    assert 1 <= judgement.confidence <= 5
    assert judgement.model == model
    usage = judgement.token_usage
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert judgement.provider_request_id is not None
    assert judgement.provider_request_id.startswith("msg_")


# ---- answers and what the request carried -----------------------------------------------------


async def test_returns_a_valid_judgement_from_one_forced_tool_call(
    fake: FakeUpstream, client: anthropic.AsyncAnthropic
) -> None:
    provider = adapter(client)

    judgement = await provider.compare(PROMPT, NO_OVERRIDES)

    assert_valid(judgement)
    assert provider.provider is LLMProviderType.ANTHROPIC
    assert provider.default_model == MODEL
    assert len(fake.requests_for(VENDOR)) == 1
    body = sent(fake)
    assert body["model"] == MODEL
    assert body["max_tokens"] == 1024
    assert body["tools"] == [
        {"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "input_schema": JUDGEMENT_SCHEMA}
    ]
    assert body["tool_choice"] == {"type": "tool", "name": TOOL_NAME}
    assert body["messages"] == [{"role": "user", "content": PROMPT.user_prompt}]
    assert "thinking" not in body
    assert "temperature" not in body
    assert fake.last(VENDOR).headers["authorization"] == "Bearer test-key"


async def test_every_applicable_override_reaches_the_request(
    fake: FakeUpstream, client: anthropic.AsyncAnthropic
) -> None:
    overrides = LLMConfigOverrides(
        model_override="claude-test-override",
        temperature_override=0.2,
        max_tokens_override=300,
        reasoning_effort=ReasoningEffort.NONE,
        output_verbosity=OutputVerbosity.HIGH,  # no Anthropic equivalent: ignored, not a 400
    )

    judgement = await adapter(client).compare(PROMPT, overrides)

    assert_valid(judgement, model="claude-test-override")
    body = sent(fake)
    assert body["model"] == "claude-test-override"
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 300
    assert body["tool_choice"] == {"type": "tool", "name": TOOL_NAME}
    assert "thinking" not in body
    assert "verbosity" not in str(body)


async def test_prompt_caching_marks_the_system_prompt_and_reports_cache_reads(
    fake: FakeUpstream, client: anthropic.AsyncAnthropic
) -> None:
    provider = adapter(client, prompt_caching=True)

    first = await provider.compare(PROMPT, NO_OVERRIDES)
    second = await provider.compare(PROMPT, NO_OVERRIDES)

    assert sent(fake)["system"] == [
        {
            "type": "text",
            "text": PROMPT.system_prompt,
            "cache_control": {"type": "ephemeral", "ttl": "5m"},
        }
    ]
    assert first.token_usage.cached_prompt_tokens == 0
    assert second.token_usage.cached_prompt_tokens > 0
    # Cached tokens are part of the prompt: the prompt is the same size either way.
    assert second.token_usage.prompt_tokens == first.token_usage.prompt_tokens
    assert second.token_usage.prompt_tokens > second.token_usage.cached_prompt_tokens
    # Both are fresh calls with their own answers.
    assert first.provider_request_id != second.provider_request_id
    assert len(fake.requests_for(VENDOR)) == 2


async def test_without_prompt_caching_the_system_prompt_is_plain_text(
    fake: FakeUpstream, client: anthropic.AsyncAnthropic
) -> None:
    provider = adapter(client, prompt_caching=False)

    await provider.compare(PROMPT, NO_OVERRIDES)
    judgement = await provider.compare(PROMPT, NO_OVERRIDES)

    assert sent(fake)["system"] == PROMPT.system_prompt
    assert judgement.token_usage.cached_prompt_tokens == 0


# ---- thinking ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("effort", "budget"),
    [(ReasoningEffort.LOW, 1024), (ReasoningEffort.MEDIUM, 4096), (ReasoningEffort.HIGH, 16384)],
)
async def test_thinking_uses_auto_tool_choice_a_budget_and_no_temperature(
    fake: FakeUpstream, client: anthropic.AsyncAnthropic, effort: ReasoningEffort, budget: int
) -> None:
    overrides = LLMConfigOverrides(reasoning_effort=effort, temperature_override=0.2)

    judgement = await adapter(client).compare(PROMPT, overrides)

    assert_valid(judgement)
    body = sent(fake)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == budget + 1024
    assert body["tool_choice"] == {"type": "auto"}
    assert body["tools"][0]["name"] == TOOL_NAME
    assert "temperature" not in body
    assert body["system"][-1] == {"type": "text", "text": THINKING_INSTRUCTION}


async def test_thinking_budget_fits_inside_a_max_tokens_override(
    fake: FakeUpstream, client: anthropic.AsyncAnthropic
) -> None:
    overrides = LLMConfigOverrides(reasoning_effort=ReasoningEffort.HIGH, max_tokens_override=2048)

    assert_valid(await adapter(client, prompt_caching=False).compare(PROMPT, overrides))

    body = sent(fake)
    assert body["max_tokens"] == 2048
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048 - 256}
    assert body["system"].endswith(THINKING_INSTRUCTION)


async def test_thinking_is_dropped_when_the_token_cap_leaves_no_room_for_it(
    fake: FakeUpstream, client: anthropic.AsyncAnthropic
) -> None:
    overrides = LLMConfigOverrides(reasoning_effort=ReasoningEffort.LOW, max_tokens_override=1000)

    assert_valid(await adapter(client).compare(PROMPT, overrides))

    body = sent(fake)
    assert body["max_tokens"] == 1000
    assert "thinking" not in body
    assert body["tool_choice"] == {"type": "tool", "name": TOOL_NAME}


# ---- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "error", "retryable", "status"),
    [
        ("server_error", ProviderUnavailableError, True, 500),
        ("unavailable", ProviderUnavailableError, True, 503),
        ("overloaded", ProviderUnavailableError, True, 529),
        ("auth", ProviderAuthError, False, 401),
        ("bad_request", ProviderBadRequestError, False, 400),
    ],
)
async def test_http_errors_map_to_service_errors_after_exactly_one_request(
    fake: FakeUpstream,
    client: anthropic.AsyncAnthropic,
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
    assert caught.value.provider is LLMProviderType.ANTHROPIC
    assert isinstance(caught.value.__cause__, anthropic.APIStatusError)
    assert len(fake.requests_for(VENDOR)) == 1  # the SDK's own retries are off


async def test_rate_limit_is_retryable_and_carries_retry_after(
    fake: FakeUpstream, client: anthropic.AsyncAnthropic
) -> None:
    fake.fail(VENDOR, "rate_limit")

    with pytest.raises(ProviderUnavailableError) as caught:
        await adapter(client).compare(PROMPT, NO_OVERRIDES)

    assert caught.value.retryable is True
    assert caught.value.reason == "rate_limited"
    assert caught.value.retry_after == pytest.approx(2.0)
    assert len(fake.requests_for(VENDOR)) == 1


async def test_a_hanging_upstream_is_a_timeout_after_one_request(
    fake: FakeUpstream, client: anthropic.AsyncAnthropic
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
        await sdk.close()

    assert caught.value.reason == "connection_error"
    assert caught.value.retryable is True


@pytest.mark.parametrize("kind", ["malformed", "empty"])
async def test_unusable_bodies_are_invalid_responses(
    fake: FakeUpstream, client: anthropic.AsyncAnthropic, kind: Any
) -> None:
    fake.fail(VENDOR, kind)

    with pytest.raises(InvalidProviderResponseError) as caught:
        await adapter(client, invalid_response_reasks=1).compare(PROMPT, NO_OVERRIDES)

    assert caught.value.retryable is False
    assert len(fake.requests_for(VENDOR)) == 2  # the first answer and one re-ask


async def test_a_schema_violation_is_re_asked_once_and_then_accepted(
    fake: FakeUpstream, client: anthropic.AsyncAnthropic
) -> None:
    provider = adapter(client, prompt_caching=False, invalid_response_reasks=1)
    single = await provider.compare(PROMPT, NO_OVERRIDES)
    fake.clear()
    fake.fail(VENDOR, "schema_violation", times=1)

    judgement = await provider.compare(PROMPT, NO_OVERRIDES)

    assert_valid(judgement)
    records = fake.requests_for(VENDOR)
    assert [r.fault for r in records] == ["schema_violation", None]
    assert records[0].json == records[1].json  # the same question, asked afresh
    # Both calls were billed: the reported usage covers them.
    assert judgement.token_usage.prompt_tokens == 2 * single.token_usage.prompt_tokens


@pytest.mark.parametrize("reasks", [0, 1, 2])
async def test_a_persistent_schema_violation_gives_up_after_the_re_asks(
    fake: FakeUpstream, client: anthropic.AsyncAnthropic, reasks: int
) -> None:
    fake.fail(VENDOR, "schema_violation")

    with pytest.raises(InvalidProviderResponseError) as caught:
        await adapter(client, invalid_response_reasks=reasks).compare(PROMPT, NO_OVERRIDES)

    assert caught.value.retryable is False
    assert "schema" in caught.value.message
    assert len(fake.requests_for(VENDOR)) == 1 + reasks


async def test_no_more_calls_are_in_flight_than_max_concurrency(
    fake: FakeUpstream, client: anthropic.AsyncAnthropic
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
