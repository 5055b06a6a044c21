"""Which Batch API serves a provider's batch requests, if any."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from common_core.api_models import LLMConfigOverrides
from common_core.enums import LLMProviderType
from services.llm_provider_service.protocols import BatchAPI
from services.llm_provider_service.settings import Settings


@dataclass(frozen=True, slots=True)
class VendorBatchAPIs:
    """The real vendors' Batch APIs this replica has keys for (built by the composition root)."""

    apis: Mapping[LLMProviderType, BatchAPI]


class BatchAPIs:
    """The Batch APIs this replica may use: those built for configured vendors (and the
    mock's), limited to `BATCH_PROVIDERS`. Under `USE_MOCK_LLM` the mock's serves every
    provider, as the mock adapter does for realtime calls."""

    def __init__(self, apis: Mapping[LLMProviderType, BatchAPI], settings: Settings) -> None:
        self._apis = dict(apis)
        self._allowed = frozenset(settings.batch.providers)
        self._use_mock = settings.providers.use_mock_llm

    def get(self, provider: LLMProviderType) -> BatchAPI | None:
        """The Batch API for `provider`'s batch requests, or None when it has none here."""
        if provider not in self._allowed:
            return None
        return self._apis.get(LLMProviderType.MOCK if self._use_mock else provider)

    def supports(self, provider: LLMProviderType, overrides: LLMConfigOverrides) -> bool:
        """Whether a batch request for `provider` with these overrides can be served."""
        api = self.get(provider)
        return api is not None and api.supports(api.model_for(overrides))

    def items(self) -> Iterator[tuple[LLMProviderType, BatchAPI]]:
        """Each provider with a batch lane here, and the Batch API that serves it."""
        for provider in LLMProviderType:
            api = self.get(provider)
            if api is not None:
                yield provider, api
