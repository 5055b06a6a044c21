"""The LLM vendors per environment: the configured vendors' adapters, and the mock."""

import random
from collections.abc import AsyncIterator, Awaitable, Callable

from dishka import Provider, Scope, provide

from common_core.enums import LLMProviderType
from services.llm_provider_service.batch.registry import BatchAPIs, VendorBatchAPIs
from services.llm_provider_service.cache.memory import NoResponseCache
from services.llm_provider_service.protocols import (
    BatchAPI,
    FaultInjection,
    LLMProvider,
    ResponseCache,
)
from services.llm_provider_service.provider_registry import ProviderRegistry, VendorAdapters
from services.llm_provider_service.providers.batch_clients import BATCH_BUILDERS
from services.llm_provider_service.providers.mock import MockProvider
from services.llm_provider_service.providers.mock_batch import MockBatchAPI
from services.llm_provider_service.providers.redacting import RedactingProvider
from services.llm_provider_service.providers.vendor_clients import VENDOR_BUILDERS
from services.llm_provider_service.redaction import Redactor
from services.llm_provider_service.settings import MockSettings, Settings


class VendorDeps(Provider):
    """One SDK client per configured vendor for the life of the app, closed on shutdown; the
    clients and adapters come from `VENDOR_BUILDERS` (`providers/vendor_clients.py`)."""

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

    @provide
    async def batch_vendors(self, settings: Settings) -> AsyncIterator[VendorBatchAPIs]:
        """A Batch API client per configured vendor that `BATCH_PROVIDERS` names and
        `BATCH_BUILDERS` knows (`providers/batch_clients.py`), closed on shutdown."""
        apis: dict[LLMProviderType, BatchAPI] = {}
        closers: list[Callable[[], Awaitable[None]]] = []
        for provider, build in BATCH_BUILDERS.items():
            config = settings.provider_settings(provider)
            if provider in settings.batch.providers and config.enabled and config.configured:
                apis[provider], close = build(config, settings)
                closers.append(close)
        yield VendorBatchAPIs(apis)
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

    @provide
    def batch_apis(
        self, settings: Settings, vendors: VendorBatchAPIs, mock: MockProvider
    ) -> BatchAPIs:
        mock_batch = MockBatchAPI(mock, settings.mock)
        return BatchAPIs({**vendors.apis, LLMProviderType.MOCK: mock_batch}, settings)


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

    @provide
    def batch_apis(self, settings: Settings, vendors: VendorBatchAPIs) -> BatchAPIs:
        return BatchAPIs(vendors.apis, settings)
