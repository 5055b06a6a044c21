"""The LLM vendors per environment: one SDK client per configured vendor, and the mock."""

import random
from collections.abc import AsyncIterator, Awaitable, Callable

from anthropic import AsyncAnthropic
from dishka import Provider, Scope, provide
from google import genai
from google.genai import types as genai_types

from common_core.enums import LLMProviderType
from services.llm_provider_service.cache.memory import NoResponseCache
from services.llm_provider_service.protocols import FaultInjection, LLMProvider, ResponseCache
from services.llm_provider_service.provider_registry import ProviderRegistry, VendorAdapters
from services.llm_provider_service.providers.anthropic_provider import AnthropicProvider
from services.llm_provider_service.providers.gemini_provider import GeminiProvider
from services.llm_provider_service.providers.mock import MockProvider
from services.llm_provider_service.providers.openai_compatible import build_client
from services.llm_provider_service.providers.openai_provider import OpenAIProvider
from services.llm_provider_service.providers.openrouter_provider import (
    OPENROUTER_BASE_URL,
    OpenRouterProvider,
    attribution_headers,
)
from services.llm_provider_service.providers.redacting import RedactingProvider
from services.llm_provider_service.redaction import Redactor
from services.llm_provider_service.settings import MockSettings, ProviderSettings, Settings

VendorBuild = tuple[LLMProvider, Callable[[], Awaitable[None]]]
# The vendors' public endpoints, used when no *_BASE_URL is set (never the SDKs' env vars).
ANTHROPIC_BASE_URL = "https://api.anthropic.com"
OPENAI_BASE_URL = "https://api.openai.com/v1"
GEMINI_BASE_URL = "https://generativelanguage.googleapis.com/"


def _anthropic(config: ProviderSettings, settings: Settings) -> VendorBuild:
    assert config.api_key is not None
    client = AsyncAnthropic(
        api_key=config.api_key.get_secret_value(),
        # Explicit, so the SDK never falls back to its own environment variables.
        base_url=config.base_url or ANTHROPIC_BASE_URL,
        timeout=config.timeout_seconds,
        max_retries=0,  # the service's retry policy is the only one
    )
    adapter = AnthropicProvider(client, config, prompt_caching=settings.anthropic.prompt_caching)
    return adapter, client.close


def _openai(config: ProviderSettings, settings: Settings) -> VendorBuild:
    client = build_client(config, default_base_url=OPENAI_BASE_URL)
    adapter = OpenAIProvider(
        client, config, reasoning_prefixes=settings.openai.reasoning_model_prefixes
    )
    return adapter, client.close


def _openrouter(config: ProviderSettings, settings: Settings) -> VendorBuild:
    headers = attribution_headers(settings.openrouter.http_referer, settings.openrouter.app_title)
    client = build_client(config, default_base_url=OPENROUTER_BASE_URL, default_headers=headers)
    return OpenRouterProvider(client, config), client.close


def _gemini(config: ProviderSettings, settings: Settings) -> VendorBuild:
    assert config.api_key is not None
    options = genai_types.HttpOptions(
        base_url=config.base_url or GEMINI_BASE_URL, timeout=round(config.timeout_seconds * 1000)
    )
    client = genai.Client(api_key=config.api_key.get_secret_value(), http_options=options)

    async def close() -> None:
        await client.aio.aclose()
        client.close()

    return GeminiProvider(client, config), close


VENDOR_BUILDERS: dict[LLMProviderType, Callable[[ProviderSettings, Settings], VendorBuild]] = {
    LLMProviderType.ANTHROPIC: _anthropic,
    LLMProviderType.OPENAI: _openai,
    LLMProviderType.GOOGLE: _gemini,
    LLMProviderType.OPENROUTER: _openrouter,
}


class VendorDeps(Provider):
    """One SDK client per configured vendor for the life of the app, closed on shutdown; a
    vendor disabled or without a key gets none (the registry answers for it with 503)."""

    scope = Scope.APP

    @provide
    async def vendors(
        self, settings: Settings, redactor: Redactor
    ) -> AsyncIterator[VendorAdapters]:
        adapters: dict[LLMProviderType, LLMProvider] = {}
        closers: list[Callable[[], Awaitable[None]]] = []
        for provider, build in VENDOR_BUILDERS.items():
            config = settings.provider_settings(provider)
            if config.enabled and config.configured:
                adapter, close = build(config, settings)
                # A vendor's error text may quote the key it was sent: redacted here, before
                # the breaker, the events, the response or the log see it.
                adapters[provider] = RedactingProvider(adapter, redactor)
                closers.append(close)
        yield VendorAdapters(adapters)
        for close in closers:
            await close()


class DevelopmentDeps(Provider):
    """Embedded default: the mock provider."""

    scope = Scope.APP

    @provide
    def mock_provider(self, section: MockSettings) -> MockProvider:
        return MockProvider(section, random.Random(section.seed))

    @provide
    def fault_injection(self, mock: MockProvider) -> FaultInjection:
        return mock

    @provide
    def registry(
        self, settings: Settings, vendors: VendorAdapters, mock: MockProvider
    ) -> ProviderRegistry:
        return ProviderRegistry({**vendors.adapters, LLMProviderType.MOCK: mock}, settings)


class TestingDeps(DevelopmentDeps):
    """The embedded default, as the test suite and CI run it."""


class DeployedDeps(Provider):
    """Staging and production: real providers only, the queue always in Redis, and no
    response cache at all (this binding replaces the queue deps' development cache)."""

    scope = Scope.APP

    @provide
    def response_cache(self) -> ResponseCache:
        return NoResponseCache()

    @provide
    def registry(self, settings: Settings, vendors: VendorAdapters) -> ProviderRegistry:
        return ProviderRegistry(vendors.adapters, settings)
