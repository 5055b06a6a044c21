"""OpenRouterProvider through the real openai SDK, over real HTTP to the fake upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from openai.types.chat import ChatCompletion
from pydantic import SecretStr

from common_core.api_models import LLMConfigOverrides
from common_core.enums import EssayWinner, LLMProviderType, OutputVerbosity, ReasoningEffort
from services.llm_provider_service.errors import (
    InvalidProviderResponseError,
    ProviderBadRequestError,
    ProviderError,
    ProviderUnavailableError,
)
from services.llm_provider_service.models import ComparisonPrompt
from services.llm_provider_service.protocols import LLMProvider
from services.llm_provider_service.providers.openai_answer import judgement_from_completion
from services.llm_provider_service.providers.openrouter_provider import (
    JSON_MODE_INSTRUCTIONS,
    attribution_headers,
)
from tests.integration.providers.vendor_adapters import (
    CASE,
    VendorAdapter,
    assert_strict_chat_request,
    every_override,
)
from tests.support.fake_vendors import FakeUpstream

PROMPT = ComparisonPrompt.plain(
    system_prompt="You are an experienced examiner of student essays.",
    user_prompt="Which essay is better?\n\nEssay A:\nCats are good.\n\nEssay B:\nDogs are good.",
)
LLAMA = "meta-llama/llama-3.3-70b-instruct"
MakeProvider = Callable[..., LLMProvider]


@pytest.fixture
async def make_provider(clean_fake_upstream: FakeUpstream) -> AsyncIterator[MakeProvider]:
    """`make_provider(headers=None, json_schema_models=None, **settings)`: an
    OpenRouterProvider on a client built as the service builds it; closed after the test."""
    async with VendorAdapter(CASE["openrouter"], clean_fake_upstream) as harness:

        def factory(
            *,
            headers: dict[str, str] | None = None,
            json_schema_models: tuple[str, ...] | None = None,
            **values: Any,
        ) -> LLMProvider:
            options = {"headers": headers, "json_schema_models": json_schema_models}
            defaults = {"api_key": SecretStr("sk-or-test"), "timeout_seconds": 5.0}
            return harness.make(options=options, **{**defaults, **values})

        yield factory


async def test_a_json_schema_model_gets_the_strict_schema_and_the_messages(
    make_provider: MakeProvider, fake: FakeUpstream
) -> None:
    # The judgement itself, its usage and ids: test_vendor_adapters.py.
    await make_provider().compare(PROMPT, LLMConfigOverrides())

    body = fake.last("openrouter").json
    assert body["model"] == "anthropic/claude-sonnet-4.5"
    assert_strict_chat_request(body, PROMPT)
    assert body["max_tokens"] == 1024
    for absent in ("temperature", "reasoning", "verbosity", "max_completion_tokens"):
        assert absent not in body, absent


@pytest.mark.parametrize("model", ["openai/gpt-4o", "google/gemini-2.5-flash"])
async def test_other_supporting_models_get_the_json_schema(
    make_provider: MakeProvider, fake: FakeUpstream, model: str
) -> None:
    judgement = await make_provider().compare(PROMPT, LLMConfigOverrides(model_override=model))

    body = fake.last("openrouter").json
    assert body["model"] == model == judgement.model
    assert body["response_format"]["type"] == "json_schema"


async def test_another_model_gets_json_mode_with_the_schema_in_the_system_prompt(
    make_provider: MakeProvider, fake: FakeUpstream
) -> None:
    judgement = await make_provider().compare(PROMPT, LLMConfigOverrides(model_override=LLAMA))

    body = fake.last("openrouter").json
    assert body["model"] == LLAMA == judgement.model
    assert body["response_format"] == {"type": "json_object"}
    system = body["messages"][0]
    assert system["role"] == "system"
    assert system["content"].startswith(PROMPT.system_prompt)
    assert system["content"].endswith(JSON_MODE_INSTRUCTIONS)
    assert '"Essay A"' in system["content"]
    assert body["messages"][1] == {"role": "user", "content": PROMPT.user_prompt}
    assert judgement.winner in (EssayWinner.ESSAY_A, EssayWinner.ESSAY_B)


async def test_the_json_schema_model_list_is_overridable(
    make_provider: MakeProvider, fake: FakeUpstream
) -> None:
    provider = make_provider(json_schema_models=("meta-llama/",))

    await provider.compare(PROMPT, LLMConfigOverrides(model_override=LLAMA))
    assert fake.last("openrouter").json["response_format"]["type"] == "json_schema"
    await provider.compare(PROMPT, LLMConfigOverrides(model_override="openai/gpt-4o"))
    assert fake.last("openrouter").json["response_format"] == {"type": "json_object"}


async def test_every_override_is_sent_in_openrouters_parameters(
    make_provider: MakeProvider, fake: FakeUpstream
) -> None:
    overrides = every_override(
        "openai/gpt-5-mini", 0.7, 3000, ReasoningEffort.HIGH, OutputVerbosity.HIGH
    )

    await make_provider().compare(PROMPT, overrides)

    body = fake.last("openrouter").json
    assert body["model"] == "openai/gpt-5-mini"
    assert body["temperature"] == 0.7
    assert body["max_tokens"] == 3000
    assert body["reasoning"] == {"effort": "high"}
    assert body["verbosity"] == "high"


@pytest.mark.parametrize(
    ("model", "effort", "budget"),
    [
        (LLAMA, None, 1024),
        (LLAMA, ReasoningEffort.NONE, 1024),
        (LLAMA, ReasoningEffort.LOW, 8192),
        ("openai/o4-mini", None, 8192),
    ],
)
async def test_reasoning_gets_the_larger_default_budget(
    make_provider: MakeProvider,
    fake: FakeUpstream,
    model: str,
    effort: ReasoningEffort | None,
    budget: int,
) -> None:
    overrides = LLMConfigOverrides(model_override=model, reasoning_effort=effort)

    await make_provider().compare(PROMPT, overrides)

    body = fake.last("openrouter").json
    assert body["max_tokens"] == budget
    assert body.get("reasoning") == (None if effort is None else {"effort": effort.value})


async def test_a_client_with_attribution_headers_sends_them(
    make_provider: MakeProvider, fake: FakeUpstream
) -> None:
    headers = attribution_headers("https://huleedu.example", "HuleEdu LLM Provider Service")
    provider = make_provider(headers=headers)

    await provider.compare(PROMPT, LLMConfigOverrides())

    sent = fake.last("openrouter").headers
    assert sent["http-referer"] == "https://huleedu.example"
    assert sent["x-title"] == "HuleEdu LLM Provider Service"
    assert sent["authorization"] == "Bearer sk-or-test"
    assert sent["x-stainless-retry-count"] == "0"


def test_attribution_headers_leave_out_unset_values() -> None:
    assert attribution_headers(None, "App") == {"X-Title": "App"}
    assert attribution_headers("https://a.example", None) == {"HTTP-Referer": "https://a.example"}
    assert attribution_headers(None, None) == {}


@pytest.mark.parametrize("model", [LLAMA])  # the default model: test_vendor_adapters.py
@pytest.mark.parametrize("kind", ["malformed", "empty", "schema_violation"])
async def test_a_persistently_invalid_answer_fails_after_one_call_plus_the_reasks(
    make_provider: MakeProvider, fake: FakeUpstream, kind: Any, model: str
) -> None:
    fake.fail("openrouter", kind)
    provider = make_provider(invalid_response_reasks=2)

    with pytest.raises(InvalidProviderResponseError) as caught:
        await provider.compare(PROMPT, LLMConfigOverrides(model_override=model))

    assert caught.value.retryable is False
    assert len(fake.requests_for("openrouter")) == 3


@pytest.mark.parametrize("model", [LLAMA])  # the default model: test_vendor_adapters.py
async def test_one_schema_violation_is_healed_by_one_fresh_reask(
    make_provider: MakeProvider, fake: FakeUpstream, model: str
) -> None:
    fake.fail("openrouter", "schema_violation", times=1)

    judgement = await make_provider().compare(PROMPT, LLMConfigOverrides(model_override=model))

    assert judgement.model == model
    first, second = fake.requests_for("openrouter")
    assert (first.fault, second.fault) == ("schema_violation", None)
    assert first.json == second.json


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({"code": 502, "message": "Upstream provider down"}, ProviderUnavailableError),
        ({"code": 400, "message": "Bad parameters"}, ProviderBadRequestError),
        ({"message": "Something odd"}, InvalidProviderResponseError),
        (None, InvalidProviderResponseError),
    ],
)
def test_an_error_embedded_in_a_200_answer_is_translated(
    error: dict[str, Any] | None, expected: type[ProviderError]
) -> None:
    body: dict[str, Any] = {
        "id": "gen-1",
        "object": "chat.completion",
        "created": 0,
        "model": LLAMA,
        "choices": [],
    }
    if error is not None:
        body["error"] = error
    completion = ChatCompletion.model_validate(body)

    with pytest.raises(expected) as caught:
        judgement_from_completion(LLMProviderType.OPENROUTER, completion, LLAMA)

    assert type(caught.value) is expected
    assert caught.value.provider is LLMProviderType.OPENROUTER
