"""OpenAIProvider through the real openai SDK, over real HTTP to the fake upstream."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion
from pydantic import SecretStr

from common_core.api_models import LLMConfigOverrides
from common_core.enums import EssayWinner, LLMProviderType, OutputVerbosity, ReasoningEffort
from services.llm_provider_service.errors import (
    InvalidProviderResponseError,
)
from services.llm_provider_service.models import ComparisonPrompt
from services.llm_provider_service.protocols import LLMProvider
from services.llm_provider_service.providers.openai_answer import judgement_from_completion
from services.llm_provider_service.providers.openai_provider import OpenAIProvider
from services.llm_provider_service.settings import ProviderSettings
from tests.integration.providers.vendor_adapters import (
    CASE,
    VendorAdapter,
    assert_strict_chat_request,
    every_override,
)
from tests.support.fake_vendors import FakeUpstream

REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
PROMPT = ComparisonPrompt.plain(
    system_prompt="You are an experienced examiner of student essays.",
    user_prompt="Which essay is better?\n\nEssay A:\nCats are good.\n\nEssay B:\nDogs are good.",
)
MakeProvider = Callable[..., LLMProvider]


@pytest.fixture
async def make_provider(clean_fake_upstream: FakeUpstream) -> AsyncIterator[MakeProvider]:
    """`make_provider(**settings)`: an OpenAIProvider on a client built as the service builds
    it (`build_client`: no hidden retries); the clients are closed after the test."""
    async with VendorAdapter(CASE["openai"], clean_fake_upstream) as harness:
        yield partial(harness.make, api_key=SecretStr("sk-test"), timeout_seconds=5.0)


async def test_the_request_carries_the_strict_schema_messages_and_classic_overrides(
    make_provider: MakeProvider, fake: FakeUpstream
) -> None:
    overrides = every_override("gpt-4o", 0.3, 300, ReasoningEffort.HIGH, OutputVerbosity.LOW)

    judgement = await make_provider().compare(PROMPT, overrides)

    body = fake.last("openai").json
    assert body["model"] == "gpt-4o" == judgement.model
    assert_strict_chat_request(body, PROMPT)
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
    overrides = every_override(model, 0.2, 2000, requested, OutputVerbosity.LOW)

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
