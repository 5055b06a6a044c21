"""Which provider answers a request: the caller's override or the default, never a silent swap."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from common_core.enums import ErrorCode, LLMProviderType
from services.llm_provider_service.errors import ProviderNotConfiguredError
from services.llm_provider_service.protocols import LLMProvider
from services.llm_provider_service.settings import ProviderSettings, Settings


@dataclass(frozen=True, slots=True)
class VendorAdapters:
    """The real vendors' adapters this replica has keys for (built by the composition root)."""

    adapters: Mapping[LLMProviderType, LLMProvider]


class ProviderRegistry:
    """The providers this replica can call, and the rules for choosing one.

    A different model is a different rater, so a request is never moved to another provider
    because its own is down: it waits in the queue instead. `USE_MOCK_LLM` is the one
    exception, and it is refused outside development and testing.
    """

    def __init__(self, providers: Mapping[LLMProviderType, LLMProvider], settings: Settings):
        self._providers = dict(providers)
        self._settings = settings
        self._use_mock = settings.providers.use_mock_llm

    def settings_for(self, provider: LLMProviderType) -> ProviderSettings:
        return self._settings.provider_settings(provider)

    def resolve(self, requested: LLMProviderType | None) -> LLMProviderType:
        """The provider that must answer; raises `ProviderNotConfiguredError` if it cannot."""
        provider = requested or self._settings.default_provider
        self.get(provider)
        return provider

    def get(self, provider: LLMProviderType) -> LLMProvider:
        """The adapter that serves `provider` (the mock for every one under USE_MOCK_LLM)."""
        config = self.settings_for(provider)
        if not config.enabled:
            raise ProviderNotConfiguredError(
                provider, f"{provider.value} is disabled on this service"
            ).with_code(ErrorCode.PROVIDER_DISABLED)
        target = LLMProviderType.MOCK if self._use_mock else provider
        adapter = self._providers.get(target)
        if adapter is None or not (self._use_mock or config.configured):
            raise ProviderNotConfiguredError(
                provider,
                f"{provider.value} is not configured on this service (no API key or adapter)",
            )
        return adapter

    def is_available(self, provider: LLMProviderType) -> bool:
        try:
            self.get(provider)
        except ProviderNotConfiguredError:
            return False
        return True
