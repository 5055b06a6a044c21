"""`MockBatchAPI`: the mock provider's Batch API, so the embedded default serves batch
requests end to end without a network: each row is a fresh judgement of the `MockProvider`."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime

from common_core.api_models import LLMConfigOverrides
from common_core.enums import LLMProviderType
from services.llm_provider_service.batch.models import (
    BatchCaps,
    BatchEntry,
    BatchPoll,
    BatchRow,
    BatchState,
    ProviderBatch,
    RowOutcome,
)
from services.llm_provider_service.errors import ProviderError
from services.llm_provider_service.protocols import LLMProvider
from services.llm_provider_service.settings import MockSettings

_CAPS = BatchCaps(max_items=10_000, max_bytes=100 * 1024 * 1024)


class MockBatchAPI:
    """The `BatchAPI` contract in this process's memory: `create` keeps the entries; a
    batch ENDs at the first poll `MOCK_BATCH_SECONDS` or more after its create; its rows
    are answered by `mock.compare` when read (one fresh call per entry, so replicates
    differ, and the mock's injected errors become ERRORED rows). `find` finds nothing (a
    create here is never ambiguous), and a batch this process does not know (it was made
    before a restart) polls as FAILED, retryable: its entries go back to the queue."""

    def __init__(
        self,
        mock: LLMProvider,
        section: MockSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._mock = mock
        self._section = section
        self._clock = clock
        self._batches: dict[str, tuple[float, list[BatchEntry]]] = {}
        self._cancelled: set[str] = set()

    @property
    def provider(self) -> LLMProviderType:
        return LLMProviderType.MOCK

    @property
    def caps(self) -> BatchCaps:
        return _CAPS

    def model_for(self, overrides: LLMConfigOverrides) -> str:
        return overrides.model_override or self._section.default_model

    def supports(self, model: str) -> bool:
        return True

    def entry_bytes(self, entry: BatchEntry) -> int:
        return len(entry.prompt.model_dump_json()) + len(entry.custom_id)

    async def create(self, tag: str, model: str, entries: Sequence[BatchEntry]) -> ProviderBatch:
        batch_id = f"mockbatch_{uuid.uuid4().hex}"
        self._batches[batch_id] = (self._clock(), list(entries))
        return ProviderBatch(
            provider=LLMProviderType.MOCK,
            batch_id=batch_id,
            model=model,
            created_at=datetime.now(UTC),
            item_count=len(entries),
        )

    async def find(
        self,
        tag: str,
        model: str,
        item_count: int,
        since: datetime,
        exclude: frozenset[str] = frozenset(),
    ) -> ProviderBatch | None:
        return None

    async def poll(self, batches: Sequence[ProviderBatch]) -> dict[str, BatchPoll]:
        return {batch.batch_id: self._poll(batch.batch_id) for batch in batches}

    def _poll(self, batch_id: str) -> BatchPoll:
        kept = self._batches.get(batch_id)
        if kept is None:
            return BatchPoll(BatchState.FAILED, "unknown", error="no such batch", retryable=True)
        if batch_id in self._cancelled:
            return BatchPoll(BatchState.CANCELLED, "cancelled")
        if self._clock() - kept[0] >= self._section.batch_seconds:
            return BatchPoll(BatchState.ENDED, "ended")
        return BatchPoll(BatchState.RUNNING, "in_progress")

    async def rows(self, batch: ProviderBatch) -> AsyncIterator[BatchRow]:
        _, entries = self._batches.get(batch.batch_id, (0.0, []))
        for entry in entries:
            try:
                judgement = await self._mock.compare(entry.prompt, entry.overrides)
            except ProviderError as exc:
                yield BatchRow(entry.custom_id, RowOutcome.ERRORED, error=exc)
            else:
                yield BatchRow(entry.custom_id, RowOutcome.SUCCEEDED, judgement=judgement)

    async def cancel(self, batch: ProviderBatch) -> None:
        if batch.batch_id in self._batches:
            self._cancelled.add(batch.batch_id)

    async def delete(self, batch: ProviderBatch) -> None:
        self._batches.pop(batch.batch_id, None)
        self._cancelled.discard(batch.batch_id)
