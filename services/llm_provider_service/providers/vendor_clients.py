"""The vendor SDK clients: one per vendor, built from its settings, with its adapter.

`VENDOR_BUILDERS` is the table the composition root (`VendorDeps` in `di/vendors.py`) walks: each
builder makes the SDK client (its key, base URL and timeout, the SDK's hidden retries off,
never the SDK's own environment variables) and the adapter on it, and returns how to close
the client.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anthropic
import openai
from anthropic import AsyncAnthropic
from google import genai
from google.genai import types as genai_types

from common_core.enums import LLMProviderType
from services.llm_provider_service.providers.anthropic_provider import AnthropicProvider
from services.llm_provider_service.providers.gemini_provider import GeminiProvider
from services.llm_provider_service.providers.openai_provider import OpenAIProvider
from services.llm_provider_service.providers.openai_request import ServiceTier, build_client
from services.llm_provider_service.providers.openrouter_provider import (
    OpenRouterProvider,
    attribution_headers,
)
from services.llm_provider_service.providers.vendor_http import (
    sdk_http_client,
    tcp_keepalive_options,
)
from services.llm_provider_service.settings import ProviderSettings, Settings

# The vendors' public endpoints, used when no *_BASE_URL is set (never the SDKs' env vars).
ANTHROPIC_BASE_URL = "https://api.anthropic.com"
OPENAI_BASE_URL = "https://api.openai.com/v1"
GEMINI_BASE_URL = "https://generativelanguage.googleapis.com/"
OPENROUTER_BASE_URL = "https://openrouter.ai/api/v1"

VendorAdapter = AnthropicProvider | OpenAIProvider | GeminiProvider | OpenRouterProvider
VendorBuild = tuple[VendorAdapter, Callable[[], Awaitable[None]]]


def anthropic_client(
    config: ProviderSettings, settings: Settings, *, max_retries: int = 0
) -> AsyncAnthropic:
    """The anthropic SDK client for `config` (the realtime adapter's has no hidden retries:
    the service's retry policy is the only one), on `LeanTransport` unless
    `VENDOR_HTTP_TRANSPORT=httpx`, with the SDK's TCP keep-alive probes either way."""
    assert config.api_key is not None
    # Explicit, so the SDK never falls back to its own environment variables.
    base_url = config.base_url or ANTHROPIC_BASE_URL
    http_client = sdk_http_client(
        anthropic.DefaultAsyncHttpxClient,
        settings.providers.vendor_http_transport,
        base_url=base_url,
        timeout=config.timeout_seconds,
        max_connections=config.max_concurrency,
        socket_options=tcp_keepalive_options(),
    )
    return AsyncAnthropic(
        api_key=config.api_key.get_secret_value(),
        base_url=base_url,
        timeout=config.timeout_seconds,
        max_retries=max_retries,
        http_client=http_client,
    )


def _anthropic(config: ProviderSettings, settings: Settings) -> VendorBuild:
    client = anthropic_client(config, settings)
    adapter = AnthropicProvider(client, config, prompt_caching=settings.anthropic.prompt_caching)
    return adapter, client.close


def _openai(config: ProviderSettings, settings: Settings) -> VendorBuild:
    client = openai_client(config, settings)
    return openai_provider(client, config, settings), client.close


def openai_client(config: ProviderSettings, settings: Settings) -> openai.AsyncOpenAI:
    """The openai SDK client on OpenAI's base URL (the realtime, batch and flex lanes')."""
    return build_client(
        config,
        default_base_url=OPENAI_BASE_URL,
        http_transport=settings.providers.vendor_http_transport,
    )


def openai_provider(
    client: openai.AsyncOpenAI,
    config: ProviderSettings,
    settings: Settings,
    *,
    service_tier: ServiceTier | None = None,
) -> OpenAIProvider:
    """The OpenAI adapter on `client` (also the flex lane's, and the batch lane's builder of
    entries, so that all three send the same request)."""
    return OpenAIProvider(
        client,
        config,
        reasoning_prefixes=settings.openai.reasoning_model_prefixes,
        service_tier=service_tier,
    )


def _openrouter(config: ProviderSettings, settings: Settings) -> VendorBuild:
    client = openrouter_client(config, settings)
    return OpenRouterProvider(client, config), client.close


def openrouter_client(config: ProviderSettings, settings: Settings) -> openai.AsyncOpenAI:
    """The openai SDK client on OpenRouter's base URL, with the attribution headers."""
    headers = attribution_headers(settings.openrouter.http_referer, settings.openrouter.app_title)
    return build_client(
        config,
        default_base_url=OPENROUTER_BASE_URL,
        default_headers=headers,
        http_transport=settings.providers.vendor_http_transport,
    )


def gemini_client(
    config: ProviderSettings,
    *,
    timeout_seconds: float | None = None,
    api_version: str | None = None,
) -> tuple[genai.Client, Callable[[], Awaitable[None]]]:
    """A google-genai client for `config` (no `retry_options`: one attempt per call) and how
    to close it; `api_version` None keeps the SDK's default (`v1`)."""
    assert config.api_key is not None
    timeout = timeout_seconds if timeout_seconds is not None else config.timeout_seconds
    options = genai_types.HttpOptions(
        base_url=config.base_url or GEMINI_BASE_URL,
        timeout=round(timeout * 1000),
        api_version=api_version,
    )
    client = genai.Client(api_key=config.api_key.get_secret_value(), http_options=options)

    async def close() -> None:
        await client.aio.aclose()
        client.close()

    return client, close


def _gemini(config: ProviderSettings, settings: Settings) -> VendorBuild:
    client, close = gemini_client(config)
    return GeminiProvider(client, config), close


VENDOR_BUILDERS: dict[LLMProviderType, Callable[[ProviderSettings, Settings], VendorBuild]] = {
    LLMProviderType.ANTHROPIC: _anthropic,
    LLMProviderType.OPENAI: _openai,
    LLMProviderType.GOOGLE: _gemini,
    LLMProviderType.OPENROUTER: _openrouter,
}
