"""The four vendor adapters, each on its real SDK pointed at the fake upstream, as one
parametrised fixture (`vendor_adapter`) for the behaviour they share; see
`test_vendor_adapters.py`. The vendor-specific tests stay in `test_<vendor>_provider.py`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types
from pydantic import SecretStr

from common_core.api_models import JUSTIFICATION_MAX_CHARS, LLMConfigOverrides
from common_core.enums import EssayWinner, LLMProviderType
from services.llm_provider_service.models import ComparisonPrompt, Judgement
from services.llm_provider_service.protocols import LLMProvider
from services.llm_provider_service.providers.anthropic_provider import AnthropicProvider
from services.llm_provider_service.providers.gemini_provider import GeminiProvider
from services.llm_provider_service.providers.judgement import JUDGEMENT_SCHEMA, TOOL_NAME
from services.llm_provider_service.providers.openai_provider import OpenAIProvider
from services.llm_provider_service.providers.openai_request import build_client
from services.llm_provider_service.providers.openrouter_provider import OpenRouterProvider
from services.llm_provider_service.settings import ProviderSettings
from tests.support.fake_vendors import FakeUpstream

TIMEOUT_SECONDS = 1.0
PROMPT = ComparisonPrompt.plain(
    system_prompt="You are an experienced teacher comparing two student essays.",
    user_prompt="Which essay is better?\n\nEssay A:\nShort and clear.\n\nEssay B:\nLong, vague.",
)
Close = Callable[[], Awaitable[None]]


def _anthropic(
    base_url: str, config: ProviderSettings, prompt_caching: bool = True
) -> tuple[LLMProvider, Close]:
    client = anthropic.AsyncAnthropic(
        api_key="test-key", base_url=base_url, max_retries=0, timeout=config.timeout_seconds
    )
    return AnthropicProvider(client, config, prompt_caching=prompt_caching), client.close


def _gemini(base_url: str, config: ProviderSettings) -> tuple[LLMProvider, Close]:
    # No retry_options: the SDK then makes exactly one attempt. The timeout is in milliseconds.
    timeout = round(config.timeout_seconds * 1000)
    options = genai_types.HttpOptions(base_url=base_url, timeout=timeout)
    client = genai.Client(api_key="test-key", http_options=options)

    async def close() -> None:
        await client.aio.aclose()
        client.close()

    return GeminiProvider(client, config), close


def _openai(base_url: str, config: ProviderSettings) -> tuple[LLMProvider, Close]:
    client = build_client(config)  # as the service builds it: no hidden retries
    prefixes = ("o1", "o3", "o4", "gpt-5")
    return OpenAIProvider(client, config, reasoning_prefixes=prefixes), client.close


def _openrouter(
    base_url: str,
    config: ProviderSettings,
    headers: dict[str, str] | None = None,
    json_schema_models: tuple[str, ...] | None = None,
) -> tuple[LLMProvider, Close]:
    client = build_client(config, default_headers=headers)
    if json_schema_models is None:
        return OpenRouterProvider(client, config), client.close
    provider = OpenRouterProvider(client, config, json_schema_models=json_schema_models)
    return provider, client.close


@dataclass(frozen=True)
class VendorCase:
    """One vendor: how its adapter is built, and what its SDK and wire format differ in."""

    vendor: str
    """The fake upstream's name for it."""
    provider: LLMProviderType
    model: str
    build: Callable[..., tuple[LLMProvider, Close]]
    """`build(base_url, settings, **options)`: the adapter and what closes its client."""
    base_url: Callable[[FakeUpstream], str]
    status_error: type[Exception]
    """The SDK's error for an HTTP error status: the service error's cause."""
    rate_limit_error: type[Exception]
    timeout_error: type[BaseException] | None
    """The SDK's timeout error, where the service error keeps it as its cause."""
    request_id_prefix: str
    thoughts_in_total: bool = False
    """Whether the total tokens may exceed prompt + completion (Gemini counts thoughts)."""
    statuses: dict[str, int] = field(default_factory=dict)
    """Where a fault's HTTP status differs from the usual one."""


CASES = [
    VendorCase(
        "anthropic", LLMProviderType.ANTHROPIC, "claude-test-default", _anthropic,
        lambda fake: fake.anthropic_base_url, anthropic.APIStatusError,
        anthropic.RateLimitError, None, "msg_", statuses={"overloaded": 529},
    ),
    VendorCase(
        "openai", LLMProviderType.OPENAI, "gpt-4.1-mini", _openai,
        lambda fake: fake.openai_base_url, openai.APIStatusError, openai.RateLimitError,
        openai.APITimeoutError, "chatcmpl-",
    ),
    VendorCase(
        "openrouter", LLMProviderType.OPENROUTER, "anthropic/claude-sonnet-4.5", _openrouter,
        lambda fake: fake.openrouter_base_url, openai.APIStatusError, openai.RateLimitError,
        openai.APITimeoutError, "gen-",
    ),
    VendorCase(
        "google", LLMProviderType.GOOGLE, "gemini-2.5-flash", _gemini,
        lambda fake: fake.google_base_url, genai_errors.APIError, genai_errors.ClientError,
        None, "", thoughts_in_total=True,
    ),
]  # fmt: skip
CASE = {case.vendor: case for case in CASES}


def settings_for(case: VendorCase, **values: Any) -> ProviderSettings:
    """The case's provider settings, enabled, with a test key and `TIMEOUT_SECONDS`."""
    fields: dict[str, Any] = {
        "provider": case.provider,
        "api_key": SecretStr("test-key"),
        "base_url": None,
        "default_model": case.model,
        "enabled": True,
        "timeout_seconds": TIMEOUT_SECONDS,
        **values,
    }
    return ProviderSettings(**fields)


def assert_valid(judgement: Judgement, case: VendorCase, model: str | None = None) -> None:
    """A judgement in range, from `model` (the case's), with usage and the vendor's id."""
    assert judgement.winner in (EssayWinner.ESSAY_A, EssayWinner.ESSAY_B)
    assert 0 < len(judgement.justification) <= JUSTIFICATION_MAX_CHARS
    assert 1 <= judgement.confidence <= 5
    assert judgement.model == (model or case.model)
    usage = judgement.token_usage
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0
    if case.thoughts_in_total:
        assert usage.total_tokens >= usage.prompt_tokens + usage.completion_tokens
    else:
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert judgement.provider_request_id
    assert judgement.provider_request_id.startswith(case.request_id_prefix)


@dataclass
class VendorAdapter:
    """`make(**settings)` builds the case's adapter on a fresh SDK client aimed at `fake`
    (or at `base_url`), with the test's settings; `async with` closes every client."""

    case: VendorCase
    fake: FakeUpstream
    closes: list[Close] = field(default_factory=list)

    def make(
        self, *, base_url: str | None = None, options: dict[str, Any] | None = None, **values: Any
    ) -> LLMProvider:
        """The adapter, on settings `values` (and `invalid_response_reasks` 1); `options`
        go to the case's `build`."""
        url = base_url or self.case.base_url(self.fake)
        config = settings_for(self.case, base_url=url, **{"invalid_response_reasks": 1, **values})
        adapter, close = self.case.build(url, config, **(options or {}))
        self.closes.append(close)
        return adapter

    def requests(self) -> int:
        return len(self.fake.requests_for(self.case.vendor))

    async def __aenter__(self) -> VendorAdapter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for close in self.closes:
            await close()

    def assert_valid(self, judgement: Judgement) -> None:
        assert_valid(judgement, self.case)


@pytest.fixture(params=CASES, ids=[case.vendor for case in CASES])
async def vendor_adapter(
    request: pytest.FixtureRequest, clean_fake_upstream: FakeUpstream
) -> AsyncIterator[VendorAdapter]:
    async with VendorAdapter(request.param, clean_fake_upstream) as harness:
        yield harness


def every_override(*values: Any) -> LLMConfigOverrides:
    """Overrides that set each of the five, in this order: model, temperature, token cap,
    reasoning effort, output verbosity."""
    return LLMConfigOverrides(**dict(zip(_OVERRIDDEN, values, strict=True)))


_OVERRIDDEN = (
    "model_override",
    "temperature_override",
    "max_tokens_override",
    "reasoning_effort",
    "output_verbosity",
)


def assert_strict_chat_request(body: dict[str, Any], prompt: ComparisonPrompt) -> None:
    """A chat completion asked with `prompt` as system and user messages and the judgement's
    strict JSON schema (OpenAI, and OpenRouter for a model that takes one)."""
    assert body["messages"] == [
        {"role": "system", "content": prompt.system_prompt},
        {"role": "user", "content": prompt.user_prompt},
    ]
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": TOOL_NAME, "schema": JUDGEMENT_SCHEMA, "strict": True},
    }
