"""The vendors' Batch API clients: one per vendor, built from its settings like its adapter.

`BATCH_BUILDERS` is the table the composition root (`BatchDeps` in `di/vendors.py`) walks for
every configured vendor named in `BATCH_PROVIDERS`: each builder makes the SDK client (key,
base URL, timeout; never the SDK's own environment variables) and the `BatchAPI` on it, and
returns how to close the client. A vendor without an entry has no batch lane. `FLEX_BUILDERS`
is the same for the flex lane.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

from google.genai import types as genai_types

from common_core.enums import LLMProviderType
from services.llm_provider_service.protocols import BatchAPI, LLMProvider
from services.llm_provider_service.providers.anthropic_batch import AnthropicBatchAPI
from services.llm_provider_service.providers.gemini_batch import GeminiBatchAPI
from services.llm_provider_service.providers.gemini_provider import GeminiProvider
from services.llm_provider_service.providers.openai_batch import OpenAIBatchAPI
from services.llm_provider_service.providers.openrouter_batch import OpenRouterBatchAPI
from services.llm_provider_service.providers.openrouter_provider import OpenRouterProvider
from services.llm_provider_service.providers.vendor_clients import (
    anthropic_client,
    gemini_client,
    openai_client,
    openai_provider,
    openrouter_client,
)
from services.llm_provider_service.settings import ProviderSettings, Settings

BatchBuild = tuple[BatchAPI, Callable[[], Awaitable[None]]]
READ_RETRIES = 2  # reads may be retried by the SDK; every create is sent with none


def _anthropic(config: ProviderSettings, settings: Settings) -> BatchBuild:
    client = anthropic_client(config, settings, max_retries=READ_RETRIES)
    api = AnthropicBatchAPI(
        client,
        default_model=config.default_model,
        prompt_caching=settings.anthropic.prompt_caching,
        max_items=settings.batch.max_items,
    )
    return api, client.close


def _openai_batch(config: ProviderSettings, settings: Settings) -> BatchBuild:
    client = openai_client(config, settings)
    realtime = openai_provider(client, config, settings)  # builds the entries, never called
    return OpenAIBatchAPI(client, realtime, max_items=settings.batch.max_items), client.close


def _openrouter_batch(config: ProviderSettings, settings: Settings) -> BatchBuild:
    client = openrouter_client(config, settings)
    realtime = OpenRouterProvider(client, config)  # builds the entries, never called
    api = OpenRouterBatchAPI(client, realtime, max_items=settings.batch.max_items)
    return api, client.close


# Gemini batch jobs are documented on `v1beta`; the SDK's default is `v1`: explicit here.
GEMINI_BATCH_API_VERSION = "v1beta"


def _gemini_batch(config: ProviderSettings, settings: Settings) -> BatchBuild:
    client, close = gemini_client(config, api_version=GEMINI_BATCH_API_VERSION)
    return GeminiBatchAPI(client, config, settings.batch.max_items), close


BATCH_BUILDERS: dict[LLMProviderType, Callable[[ProviderSettings, Settings], BatchBuild]] = {
    LLMProviderType.ANTHROPIC: _anthropic,
    LLMProviderType.OPENAI: _openai_batch,
    LLMProviderType.GOOGLE: _gemini_batch,
    LLMProviderType.OPENROUTER: _openrouter_batch,
}

FlexBuild = tuple[LLMProvider, Callable[[], Awaitable[None]]]


def _openai_flex(config: ProviderSettings, settings: Settings) -> FlexBuild:
    flex = dataclasses.replace(config, timeout_seconds=settings.batch.flex_timeout_seconds)
    client = openai_client(flex, settings)
    return openai_provider(client, flex, settings, service_tier="flex"), client.close


def _gemini_flex(config: ProviderSettings, settings: Settings) -> FlexBuild:
    timeout = settings.batch.flex_timeout_seconds
    client, close = gemini_client(config, timeout_seconds=timeout)
    flex = genai_types.ServiceTier.FLEX
    return GeminiProvider(client, config, service_tier=flex, timeout_seconds=timeout), close


# The flex lane (`BATCH_FLEX_ENABLED`): per vendor that sells `service_tier: "flex"`, an
# adapter like its realtime one that asks for flex (slower, refused under load, about half
# price), with the flex timeout.
FLEX_BUILDERS: dict[LLMProviderType, Callable[[ProviderSettings, Settings], FlexBuild]] = {
    LLMProviderType.OPENAI: _openai_flex,
    LLMProviderType.GOOGLE: _gemini_flex,
}
