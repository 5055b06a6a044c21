"""The OpenAI-compatible adapters send through the SDK's low-level `post` with a body they
build themselves (`ChatRequest.body`) and read the answer themselves (`read_completion`):
what reaches the wire must be exactly what the SDK's typed `chat.completions.create` sends
for the same request, body bytes and headers alike, and what they read exactly what it
returns."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator

import openai
import pytest
from pydantic import SecretStr

from common_core.api_models import LLMConfigOverrides
from common_core.enums import LLMProviderType, OutputVerbosity, ReasoningEffort
from services.llm_provider_service.errors import InvalidProviderResponseError
from services.llm_provider_service.models import ComparisonPrompt
from services.llm_provider_service.providers.openai_compatible import OpenAICompatibleProvider
from services.llm_provider_service.providers.openai_provider import OpenAIProvider
from services.llm_provider_service.providers.openai_request import ChatRequest, build_client
from services.llm_provider_service.providers.openrouter_provider import OpenRouterProvider
from services.llm_provider_service.settings import ProviderSettings
from tests.support.fake_vendors import FakeUpstream, RecordedRequest

PROMPT = ComparisonPrompt.plain(
    system_prompt="You are an experienced examiner of student essays. «Ünïcode» ✓",
    user_prompt='Which essay is better?\n\nEssay A:\n"Cats" are good.\n\nEssay B:\nDogs 🐕.',
)
# Headers that differ between any two calls, whichever way they are made.
_PER_CALL_HEADERS = {"content-length", "x-stainless-retry-count"}


def _through_create(client: openai.AsyncOpenAI, request: ChatRequest, seconds: float):
    """The request as the adapters sent it before: the SDK's typed `create`."""

    def given(value):
        return openai.omit if value is None else value

    return client.chat.completions.create(
        model=request.model,
        messages=request.messages,
        response_format=request.response_format,
        max_tokens=given(request.max_tokens),
        max_completion_tokens=given(request.max_completion_tokens),
        temperature=given(request.temperature),
        reasoning_effort=given(request.reasoning_effort),
        verbosity=given(request.verbosity),
        prompt_cache_key=given(request.prompt_cache_key),
        service_tier=given(request.service_tier),
        extra_body=request.extra_body,
        timeout=seconds,
    )


def _comparable(record: RecordedRequest) -> tuple[str, str, str, dict[str, str], bytes]:
    headers = {k: v for k, v in record.headers.items() if k.lower() not in _PER_CALL_HEADERS}
    return record.method, record.path, record.query, headers, record.body


@pytest.fixture
async def providers(fake: FakeUpstream) -> AsyncIterator[dict[str, OpenAICompatibleProvider]]:
    def config(provider: LLMProviderType, base_url: str, model: str) -> ProviderSettings:
        return ProviderSettings(
            provider, model, True, SecretStr("sk-test"), base_url, timeout_seconds=5.0
        )

    openai_client = build_client(
        config(LLMProviderType.OPENAI, fake.openai_base_url, "gpt-4.1-mini")
    )
    router_client = build_client(
        config(LLMProviderType.OPENROUTER, fake.openrouter_base_url, "anthropic/claude-x"),
        default_headers={"X-Title": "wire test"},
    )
    prefixes = ("o1", "o3", "o4", "gpt-5")
    yield {
        "openai": OpenAIProvider(
            openai_client,
            config(LLMProviderType.OPENAI, fake.openai_base_url, "gpt-4.1-mini"),
            reasoning_prefixes=prefixes,
        ),
        "openrouter": OpenRouterProvider(
            router_client,
            config(LLMProviderType.OPENROUTER, fake.openrouter_base_url, "anthropic/claude-x"),
        ),
    }
    await openai_client.close()
    await router_client.close()


@pytest.mark.parametrize(
    ("vendor", "overrides"),
    [
        ("openai", LLMConfigOverrides()),
        ("openai", LLMConfigOverrides(model_override="gpt-4o", temperature_override=0.35)),
        (
            "openai",
            LLMConfigOverrides(
                model_override="gpt-5-mini",
                max_tokens_override=3000,
                reasoning_effort=ReasoningEffort.NONE,
                output_verbosity=OutputVerbosity.HIGH,
            ),
        ),
        ("openrouter", LLMConfigOverrides()),
        (
            "openrouter",
            LLMConfigOverrides(
                model_override="openai/gpt-5-mini",
                reasoning_effort=ReasoningEffort.HIGH,
                temperature_override=1e-7,
            ),
        ),
    ],
)
async def test_the_wire_request_is_the_one_the_typed_create_sends(
    providers: dict[str, OpenAICompatibleProvider],
    fake: FakeUpstream,
    vendor: str,
    overrides: LLMConfigOverrides,
) -> None:
    provider = providers[vendor]
    request = provider._build_request(PROMPT, overrides)
    request = dataclasses.replace(request, prompt_cache_key="llmps-0123abcd")

    await provider._send(request, seconds=5.0)
    await _through_create(provider._client, request, 5.0)

    sent, reference = fake.requests_for(vendor)[-2:]
    assert _comparable(sent) == _comparable(reference)


async def test_the_flex_request_is_the_one_the_typed_create_sends(
    providers: dict[str, OpenAICompatibleProvider], fake: FakeUpstream
) -> None:
    provider = providers["openai"]
    request = provider._build_request(PROMPT, LLMConfigOverrides(temperature_override=0.5))
    request = dataclasses.replace(request, service_tier="flex")

    await provider._send(request, seconds=5.0)
    await _through_create(provider._client, request, 5.0)

    sent, reference = fake.requests_for("openai")[-2:]
    assert sent.json["service_tier"] == "flex"
    assert _comparable(sent) == _comparable(reference)


_COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-4.1-mini-2025-04-14",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": '{"winner": "Essay A"}', "refusal": None},
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 4},
    },
}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(json.dumps(_COMPLETION), "application/json", id="well-formed"),
        pytest.param(
            json.dumps({**_COMPLETION, "provider": "X", "native": {"a": [1, 2]}}),
            "application/json; charset=utf-8",
            id="extra-fields",
        ),
        pytest.param(
            json.dumps({**_COMPLETION, "created": "soon", "choices": [{"finish_reason": "odd"}]}),
            "application/json",
            id="not-valid-but-constructible",
        ),
        pytest.param(
            json.dumps({"error": {"code": 502, "message": "upstream down"}}),
            "application/json",
            id="embedded-error",
        ),
        pytest.param("[1, 2]", "application/json", id="json-not-an-object"),
        pytest.param(json.dumps(_COMPLETION), "text/plain", id="json-as-text"),
        pytest.param("not json at all", "text/plain", id="text"),
        pytest.param("null", "application/json", id="null"),
    ],
)
async def test_the_answer_read_is_the_one_the_typed_create_returns(
    providers: dict[str, OpenAICompatibleProvider], fake: FakeUpstream, body: str, content_type: str
) -> None:
    provider = providers["openai"]
    request = provider._build_request(PROMPT, LLMConfigOverrides())
    fake.fail_with("openai", body, content_type=content_type)

    ours = await provider._send(request, seconds=5.0)
    reference = await _through_create(provider._client, request, 5.0)

    assert _shape(ours) == _shape(reference)


def _shape(value: object) -> object:
    """A value with the type of every model in it, so that a dict where the SDK builds a
    model (or the reverse) differs."""
    if isinstance(value, openai.BaseModel):
        fields = {**value.__dict__, **(value.model_extra or {})}
        return type(value), {name: _shape(field) for name, field in fields.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    return type(value), value


async def test_a_body_that_is_not_json_fails_as_the_typed_create_fails(
    providers: dict[str, OpenAICompatibleProvider], fake: FakeUpstream
) -> None:
    provider = providers["openai"]
    request = provider._build_request(PROMPT, LLMConfigOverrides())
    fake.fail_with("openai", "{not json", content_type="application/json")

    with pytest.raises(json.JSONDecodeError) as reference:
        await _through_create(provider._client, request, 5.0)
    with pytest.raises(InvalidProviderResponseError) as ours:
        await provider._send(request, seconds=5.0)
    assert type(ours.value.__cause__) is type(reference.value)
