"""A tiny `BatchAPI` for the request side's tests: it says which models it takes, and is
never asked to send anything (the batch engine and the vendor adapters have their own)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import NoReturn

from dishka import Provider, Scope, provide

from common_core.api_models import LLMConfigOverrides
from common_core.enums import LLMProviderType
from services.llm_provider_service.batch.models import (
    BatchCaps,
    BatchEntry,
    BatchPoll,
    BatchRow,
    ProviderBatch,
)
from services.llm_provider_service.batch.registry import BatchAPIs
from services.llm_provider_service.settings import Settings


class ModelsBatchAPI:
    """A `BatchAPI` of `provider` that takes `models` (`default` when a request names none)."""

    def __init__(
        self,
        provider: LLMProviderType = LLMProviderType.MOCK,
        models: Sequence[str] = ("mock-rater-1",),
        default: str = "mock-rater-1",
    ) -> None:
        self._provider = provider
        self._models = frozenset(models)
        self._default = default

    @property
    def provider(self) -> LLMProviderType:
        return self._provider

    @property
    def caps(self) -> BatchCaps:
        return BatchCaps(max_items=100, max_bytes=1_000_000)

    def model_for(self, overrides: LLMConfigOverrides) -> str:
        return overrides.model_override or self._default

    def supports(self, model: str) -> bool:
        return model in self._models

    def entry_bytes(self, entry: BatchEntry) -> int:
        return len(entry.prompt.user_prompt.encode())

    async def create(self, tag: str, model: str, entries: Sequence[BatchEntry]) -> ProviderBatch:
        _never_sent()

    async def find(
        self,
        tag: str,
        model: str,
        item_count: int,
        since: datetime,
        exclude: frozenset[str] = frozenset(),
    ) -> ProviderBatch | None:
        _never_sent()

    async def poll(self, batches: Sequence[ProviderBatch]) -> dict[str, BatchPoll]:
        _never_sent()

    def rows(self, batch: ProviderBatch) -> AsyncIterator[BatchRow]:
        _never_sent()

    async def cancel(self, batch: ProviderBatch) -> None:
        _never_sent()

    async def delete(self, batch: ProviderBatch) -> None:
        _never_sent()


def _never_sent() -> NoReturn:
    raise AssertionError("the request side never sends a batch")


def batch_apis_deps(*apis: ModelsBatchAPI) -> Provider:
    """A dishka override binding `BatchAPIs` to `apis` (limited by BATCH_PROVIDERS as usual)."""

    class BatchAPIsDeps(Provider):
        scope = Scope.APP

        @provide
        def batch_apis(self, settings: Settings) -> BatchAPIs:
            return BatchAPIs({api.provider: api for api in apis}, settings)

    return BatchAPIsDeps()
