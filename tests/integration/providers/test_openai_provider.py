"""OpenAIProvider through the real openai SDK, over real HTTP to the fake upstream."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion
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
from services.llm_provider_service.models import ComparisonPrompt
from services.llm_provider_service.protocols import LLMProvider
from services.llm_provider_service.providers.judgement import JUDGEMENT_SCHEMA, TOOL_NAME
from services.llm_provider_service.providers.openai_answer import judgement_from_completion
from services.llm_provider_service.providers.openai_provider import OpenAIProvider
from services.llm_provider_service.providers.openai_request import build_client
from services.llm_provider_service.settings import ProviderSettings
from tests.support.fake_upstream import FakeUpstream, clean_fake_upstream, fake_upstream  # noqa: F401

REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
PROMPT = ComparisonPrompt.plain(
    system_prompt="You are an experienced examiner of student essays.",
    user_prompt="Which essay is better?\n\nEssay A:\nCats are good.\n\nEssay B:\nDogs are good.",
)
MakeProvider = Callable[..., OpenAIProvider]


@pytest.fixture
async def make_provider(clean_fake_upstream: FakeUpstream) -> AsyncIterator[MakeProvider]:  # noqa: F811
    """`make_provider(**settings)`: an OpenAIProvider on a client built as the service builds
    it (`build_client`: no hidden retries); the clients are closed after the test."""
    clients: list[openai.AsyncOpenAI] = []

    def factory(**values: Any) -> OpenAIProvider:
        config = ProviderSettings(
            **{
                "provider": LLMProviderType.OPENAI,
                "api_key": SecretStr("sk-test"),
                "base_url": clean_fake_upstream.openai_base_url,
                "default_model": "gpt-4.1-mini",
                "enabled": True,
                "timeout_seconds": 5.0,
                "invalid_response_reasks": 1,
                **values,
            }
        )
        client = build_client(config)
        clients.append(client)
        return OpenAIProvider(client, config, reasoning_prefixes=REASONING_PREFIXES)

    yield factory
    for client in clients:
        await client.close()


@pytest.fixture
def fake(clean_fake_upstream: FakeUpstream) -> FakeUpstream:  # noqa: F811
    return clean_fake_upstream


async def test_a_classic_model_returns_a_valid_judgement_with_usage_and_ids(
    make_provider: MakeProvider, fake: FakeUpstream
) -> None:
    provider: LLMProvider = make_provider()

    judgement = await provider.compare(PROMPT, LLMConfigOverrides())

    assert provider.provider is LLMProviderType.OPENAI
    assert provider.default_model == "gpt-4.1-mini"
    assert judgement.winner in (EssayWinner.ESSAY_A, EssayWinner.ESSAY_B)
    assert 0 < len(judgement.justification) <= JUSTIFICATION_MAX_CHARS
    assert 1 <= judgement.confidence <= 5
    assert judgement.model == "gpt-4.1-mini"
    assert judgement.provider_request_id is not None
    assert judgement.provider_request_id.startswith("chatcmpl-")
    usage = judgement.token_usage
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.cached_prompt_tokens == 0
    assert len(fake.requests_for("openai")) == 1


async def test_a_repeated_system_prompt_reports_cached_prompt_tokens(
    make_provider: MakeProvider,
) -> None:
    provider = make_provider()

    first = await provider.compare(PROMPT, LLMConfigOverrides())
    second = await provider.compare(PROMPT, LLMConfigOverrides())

    assert first.token_usage.cached_prompt_tokens == 0
    assert 0 < second.token_usage.cached_prompt_tokens <= second.token_usage.prompt_tokens
    assert first.provider_request_id != second.provider_request_id


async def test_the_request_carries_the_strict_schema_messages_and_classic_overrides(
    make_provider: MakeProvider, fake: FakeUpstream
) -> None:
    overrides = LLMConfigOverrides(
        model_override="gpt-4o",
        temperature_override=0.3,
        max_tokens_override=300,
        reasoning_effort=ReasoningEffort.HIGH,
        output_verbosity=OutputVerbosity.LOW,
    )

    judgement = await make_provider().compare(PROMPT, overrides)

    body = fake.last("openai").json
    assert body["model"] == "gpt-4o" == judgement.model
    assert body["messages"] == [
        {"role": "system", "content": PROMPT.system_prompt},
        {"role": "user", "content": PROMPT.user_prompt},
    ]
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": TOOL_NAME, "schema": JUDGEMENT_SCHEMA, "strict": True},
    }
    assert body["temperature"] == 0.3
    assert body["max_tokens"] == 300
    for absent in ("max_completion_tokens", "reasoning_effort", "verbosity", "stream"):
        assert absent not in body, absent


async def test_a_classic_model_gets_the_default_budget_and_no_temperature_unless_asked(
    make_provider: MakeProvider, fake: FakeUpstream
) -> None:
    await make_provider().compare(PROMPT, LLMConfigOverrides())

    body = fake.last("openai").json
    assert body["model"] == "gpt-4.1-mini"
    assert body["max_tokens"] == 1024
    assert "temperature" not in body


@pytest.mark.parametrize(
    ("model", "requested", "sent", "verbosity"),
    [
        ("gpt-5-mini", ReasoningEffort.NONE, "minimal", "low"),
        ("gpt-5-mini", ReasoningEffort.MEDIUM, "medium", "low"),
        ("gpt-5.1", ReasoningEffort.NONE, "none", "low"),
        ("o4-mini", ReasoningEffort.NONE, "low", None),
        ("o3", ReasoningEffort.HIGH, "high", None),
    ],
)
async def test_a_reasoning_model_gets_completion_tokens_and_effort_but_no_temperature(
    make_provider: MakeProvider,
    fake: FakeUpstream,
    model: str,
    requested: ReasoningEffort,
    sent: str,
    verbosity: str | None,
) -> None:
    overrides = LLMConfigOverrides(
        model_override=model,
        temperature_override=0.2,
        max_tokens_override=2000,
        reasoning_effort=requested,
        output_verbosity=OutputVerbosity.LOW,
    )

    judgement = await make_provider().compare(PROMPT, overrides)

    body = fake.last("openai").json
    assert body["model"] == model == judgement.model
    assert body["max_completion_tokens"] == 2000
    assert body["reasoning_effort"] == sent
    assert body.get("verbosity") == verbosity
    assert "temperature" not in body
    assert "max_tokens" not in body
    assert body["response_format"]["json_schema"]["strict"] is True


async def test_a_reasoning_default_model_gets_the_larger_default_budget(
    make_provider: MakeProvider, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    provider = make_provider(default_model="gpt-5-mini")

    with caplog.at_level(logging.DEBUG):
        await provider.compare(PROMPT, LLMConfigOverrides(temperature_override=0.0))

    body = fake.last("openai").json
    assert body["max_completion_tokens"] == 8192
    assert "reasoning_effort" not in body
    assert "temperature" not in body
    assert "temperature_override" in caplog.text


FAULTS: list[tuple[str, type[ProviderError], bool, dict[str, Any]]] = [
    ("server_error", ProviderUnavailableError, True, {"status": 500, "reason": "server_error"}),
    ("unavailable", ProviderUnavailableError, True, {"status": 503, "reason": "server_error"}),
    ("overloaded", ProviderUnavailableError, True, {"status": 503, "reason": "server_error"}),
    ("rate_limit", ProviderUnavailableError, True, {"status": 429, "reason": "rate_limited"}),
    ("auth", ProviderAuthError, False, {"status": 401}),
    ("bad_request", ProviderBadRequestError, False, {"status": 400}),
]


@pytest.mark.parametrize(("kind", "error", "retryable", "attrs"), FAULTS)
async def test_an_http_fault_becomes_the_service_error_after_exactly_one_request(
    make_provider: MakeProvider,
    fake: FakeUpstream,
    kind: Any,
    error: type[ProviderError],
    retryable: bool,
    attrs: dict[str, Any],
) -> None:
    fake.fail("openai", kind)

    with pytest.raises(error) as caught:
        await make_provider().compare(PROMPT, LLMConfigOverrides())

    assert type(caught.value) is error
    assert caught.value.retryable is retryable
    assert caught.value.provider is LLMProviderType.OPENAI
    for name, value in attrs.items():
        assert getattr(caught.value, name) == value
    assert isinstance(caught.value.__cause__, openai.APIStatusError)
    assert len(fake.requests_for("openai")) == 1  # no hidden SDK retry


async def test_a_rate_limit_carries_the_retry_after(
    make_provider: MakeProvider, fake: FakeUpstream
) -> None:
    fake.fail("openai", "rate_limit")

    with pytest.raises(ProviderUnavailableError) as caught:
        await make_provider().compare(PROMPT, LLMConfigOverrides())

    assert caught.value.retry_after == pytest.approx(2.0)
    assert caught.value.details["reason"] == "rate_limited"
    assert "Rate limit reached" in caught.value.message


async def test_a_hung_request_becomes_a_retryable_timeout(
    make_provider: MakeProvider, fake: FakeUpstream
) -> None:
    fake.fail("openai", "timeout")

    with pytest.raises(ProviderTimeoutError) as caught:
        await make_provider(timeout_seconds=0.3).compare(PROMPT, LLMConfigOverrides())

    assert caught.value.retryable is True
    assert isinstance(caught.value.__cause__, openai.APITimeoutError)
    assert len(fake.requests_for("openai")) == 1


async def test_an_unreachable_endpoint_is_a_retryable_connection_error(
    make_provider: MakeProvider,
) -> None:
    with socket.socket() as sock:  # a port that nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = make_provider(base_url=f"http://127.0.0.1:{port}/v1")

    with pytest.raises(ProviderUnavailableError) as caught:
        await provider.compare(PROMPT, LLMConfigOverrides())

    assert caught.value.reason == "connection_error"
    assert caught.value.retryable is True


@pytest.mark.parametrize("kind", ["malformed", "empty", "schema_violation"])
async def test_a_persistently_invalid_answer_fails_after_one_call_plus_the_reasks(
    make_provider: MakeProvider, fake: FakeUpstream, kind: Any
) -> None:
    fake.fail("openai", kind)

    with pytest.raises(InvalidProviderResponseError) as caught:
        await make_provider(invalid_response_reasks=1).compare(PROMPT, LLMConfigOverrides())

    assert caught.value.retryable is False
    assert len(fake.requests_for("openai")) == 2


@pytest.mark.parametrize("reasks", [0, 2])
async def test_the_number_of_reasks_is_the_configured_one(
    make_provider: MakeProvider, fake: FakeUpstream, reasks: int
) -> None:
    fake.fail("openai", "schema_violation")

    with pytest.raises(InvalidProviderResponseError):
        await make_provider(invalid_response_reasks=reasks).compare(PROMPT, LLMConfigOverrides())

    assert len(fake.requests_for("openai")) == 1 + reasks


async def test_one_schema_violation_is_healed_by_one_fresh_reask(
    make_provider: MakeProvider, fake: FakeUpstream
) -> None:
    fake.fail("openai", "schema_violation", times=1)

    judgement = await make_provider().compare(PROMPT, LLMConfigOverrides())

    assert judgement.winner in (EssayWinner.ESSAY_A, EssayWinner.ESSAY_B)
    first, second = fake.requests_for("openai")
    assert first.fault == "schema_violation"
    assert second.fault is None
    assert first.json == second.json


async def test_calls_beyond_max_concurrency_wait_for_a_free_slot(
    make_provider: MakeProvider, fake: FakeUpstream
) -> None:
    provider = make_provider(max_concurrency=1, timeout_seconds=0.4)
    fake.fail("openai", "timeout", times=1)

    results = await asyncio.gather(
        provider.compare(PROMPT, LLMConfigOverrides()),
        provider.compare(PROMPT, LLMConfigOverrides()),
        return_exceptions=True,
    )

    assert sorted(type(r).__name__ for r in results) == ["Judgement", "ProviderTimeoutError"]
    hung, served = fake.requests_for("openai")
    assert served.received_at - hung.received_at >= 0.3  # sent only after the slot was freed


async def test_the_built_client_has_no_hidden_retries_and_others_are_warned_about(
    make_provider: MakeProvider, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    await make_provider().compare(PROMPT, LLMConfigOverrides())
    assert fake.last("openai").headers["x-stainless-retry-count"] == "0"
    assert fake.last("openai").headers["authorization"] == "Bearer sk-test"

    config = ProviderSettings(
        provider=LLMProviderType.OPENAI,
        api_key=SecretStr("sk-test"),
        base_url=fake.openai_base_url,
        default_model="gpt-4o",
        enabled=True,
        timeout_seconds=5.0,
    )
    async with openai.AsyncOpenAI(api_key="sk-test", base_url=fake.openai_base_url) as client:
        with caplog.at_level(logging.WARNING):
            OpenAIProvider(client, config, reasoning_prefixes=REASONING_PREFIXES)
    assert "max_retries=2" in caplog.text


def _completion(message: dict[str, Any], finish_reason: str = "stop") -> ChatCompletion:
    return ChatCompletion.model_validate(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": "gpt-4o-2024-08-06",
            "choices": [
                {"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
    )


def test_a_refusal_is_an_invalid_response() -> None:
    completion = _completion({"role": "assistant", "content": None, "refusal": "I can't."})

    with pytest.raises(InvalidProviderResponseError, match="refused"):
        judgement_from_completion(LLMProviderType.OPENAI, completion, "gpt-4o")


def test_an_answer_cut_off_by_the_token_limit_is_an_invalid_response() -> None:
    content = '{"winner": "Essay A", "justification": "Clear'
    completion = _completion({"role": "assistant", "content": content}, finish_reason="length")

    with pytest.raises(InvalidProviderResponseError, match="finish_reason=length"):
        judgement_from_completion(LLMProviderType.OPENAI, completion, "gpt-4o")


@pytest.mark.parametrize(
    "content",
    [
        '{"winner": "essay a", "justification": "x", "confidence": 3}',
        '{"winner": "Essay A", "justification": "x", "confidence": "3"}',
        '{"winner": "Essay A", "justification": "x", "confidence": 7}',
        '{"winner": "Essay A", "justification": "x"}',
        '["Essay A", "x", 3]',
    ],
)
def test_nothing_outside_the_schema_is_converted(content: str) -> None:
    completion = _completion({"role": "assistant", "content": content})

    with pytest.raises(InvalidProviderResponseError):
        judgement_from_completion(LLMProviderType.OPENAI, completion, "gpt-4o")


def test_the_answering_model_and_usage_are_reported() -> None:
    content = '{"winner": "Essay B", "justification": "Better argued.", "confidence": 4}'
    completion = _completion({"role": "assistant", "content": content})

    judgement = judgement_from_completion(LLMProviderType.OPENAI, completion, "gpt-4o")

    assert judgement.winner is EssayWinner.ESSAY_B
    assert judgement.model == "gpt-4o-2024-08-06"
    assert judgement.provider_request_id == "chatcmpl-1"
    assert judgement.token_usage.total_tokens == 15
    assert judgement.token_usage.cached_prompt_tokens == 0


async def test_a_reasked_judgement_reports_the_tokens_of_every_attempt(
    make_provider: MakeProvider, fake: FakeUpstream
) -> None:
    plain = await make_provider().compare(PROMPT, LLMConfigOverrides())
    fake.fail("openai", "schema_violation", times=1)

    reasked = await make_provider().compare(PROMPT, LLMConfigOverrides())

    # The vendor bills the rejected answer too, so the usage (and the cost) counts it.
    assert reasked.token_usage.prompt_tokens == 2 * plain.token_usage.prompt_tokens
    assert reasked.token_usage.completion_tokens > plain.token_usage.completion_tokens / 2
