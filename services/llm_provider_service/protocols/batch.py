"""Ports of the batch lane: each vendor's Batch API, and the durable record of what was sent.

`documentation/batch.md` has the state machine these serve. In short: the batch engine claims
`processing_mode: "batch"` requests from the batch lane of the queue (ordinary fenced leases),
writes a `SpillRecord` (SUBMITTING) before it asks the vendor to create a batch, marks it
SUBMITTED with the vendor's batch once created, polls it, and completes each request from its
own row through the queue's fenced `complete`, exactly as a worker would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol
from uuid import UUID

from common_core.api_models import LLMConfigOverrides
from common_core.enums import LLMProviderType
from services.llm_provider_service.batch.models import (
    BatchCaps,
    BatchEntry,
    BatchPoll,
    BatchRow,
    ProviderBatch,
)


class BatchAPI(Protocol):
    """One vendor's Batch API, through its official SDK (never retried by the SDK on create)."""

    @property
    def provider(self) -> LLMProviderType: ...

    @property
    def caps(self) -> BatchCaps: ...

    def model_for(self, overrides: LLMConfigOverrides) -> str:
        """The model an entry with these overrides goes to (the override, else the default)."""
        ...

    def supports(self, model: str) -> bool:
        """Whether `model` can be sent through this Batch API; False makes a
        `processing_mode: "batch"` request for it a 400 `BATCH_NOT_SUPPORTED`."""
        ...

    def entry_bytes(self, entry: BatchEntry) -> int:
        """The size `entry` adds to a batch, as the vendor counts it toward its byte cap."""
        ...

    async def create(self, tag: str, model: str, entries: Sequence[BatchEntry]) -> ProviderBatch:
        """Ask the vendor for one batch of `entries`, all for `model`, each built exactly as
        the realtime call builds its request (structured output enforced the same way).

        One attempt, never retried by the SDK: a retried create can make a second paid
        batch. `tag` (the spill id) goes where the vendor keeps one (OpenAI metadata, Gemini
        display name) for `find`. Raises `BatchCreateRefusedError` when the vendor
        definitely made no batch, `BatchCreateAmbiguousError` when it may have."""
        ...

    async def find(
        self,
        tag: str,
        model: str,
        item_count: int,
        since: datetime,
        exclude: frozenset[str] = frozenset(),
    ) -> ProviderBatch | None:
        """The batch an ambiguous `create(tag, model, …)` of `item_count` entries made, if the
        vendor's list shows one: by `tag` where the vendor keeps it, else by model, entry
        count and a creation time from `since` to a few minutes after, never one whose id
        is in `exclude` (the batches other spills already own). None when there is none.
        Raises `BatchAPIUnavailableError` when the list cannot be read."""
        ...

    async def poll(self, batches: Sequence[ProviderBatch]) -> dict[str, BatchPoll]:
        """Where each batch is, keyed by `batch_id`, within the vendor's request budget: one
        retrieve per batch when few are open, pages of the vendor's list when many are. A
        batch left out of the answer is polled again next time. Raises
        `BatchAPIUnavailableError` when nothing could be read."""
        ...

    def rows(self, batch: ProviderBatch) -> AsyncIterator[BatchRow]:
        """The rows of an ENDED batch, in whatever order the vendor gives them, streamed.
        Rows for ids that are not in the batch, and repeated rows, are passed on as they
        come: the engine decides what to do with them. Raises `BatchAPIUnavailableError` if
        the results cannot be read (the engine reads them again later)."""
        ...

    async def cancel(self, batch: ProviderBatch) -> None:
        """Ask the vendor to stop the batch (every entry in it is dead for the service). A
        vendor without a cancel call (OpenRouter) does nothing. Raises
        `BatchAPIUnavailableError` when it did not answer."""
        ...

    async def delete(self, batch: ProviderBatch) -> None:
        """Delete the vendor's copies of the batch and its files (these are student essays).
        Raises `BatchAPIUnavailableError` when it did not answer; a batch already gone is
        no error."""
        ...


class SpillState(StrEnum):
    SUBMITTING = "submitting"  # written before the create call; no vendor batch known yet
    SUBMITTED = "submitted"  # the vendor made `batch`; polling


@dataclass(frozen=True, slots=True)
class SpillEntry:
    """One request's place in a spill: enough to rebuild its queue lease after a restart
    (the job itself is read back from the queue)."""

    queue_id: UUID
    token: int
    attempt: int


@dataclass(frozen=True, slots=True)
class SpillRecord:
    """The durable record of one spill: written SUBMITTING before the vendor is asked, kept
    until every entry is settled, then dropped. `spill_id` is the tag sent with the create."""

    spill_id: str
    provider: LLMProviderType
    model: str
    state: SpillState
    started_at: datetime
    entries: tuple[SpillEntry, ...]
    batch: ProviderBatch | None = None
    settled: frozenset[str] = frozenset()  # custom ids whose row was applied to the queue


class SpillStore(Protocol):
    """The batch lane's durable records; every method raises `QueueUnavailableError` when
    the store cannot be reached."""

    async def begin(self, record: SpillRecord) -> None:
        """Write `record` (SUBMITTING) before the create call that it describes."""
        ...

    async def submitted(self, spill_id: str, batch: ProviderBatch) -> None:
        """The vendor made `batch` for this spill: SUBMITTED."""
        ...

    async def settle(self, spill_id: str, custom_ids: Sequence[str]) -> None:
        """These entries' rows were applied to the queue; idempotent."""
        ...

    async def get(self, spill_id: str) -> SpillRecord | None: ...

    async def open(self) -> list[SpillRecord]:
        """Every spill not yet finished, oldest first."""
        ...

    async def finish(self, spill_id: str) -> None:
        """Every entry is settled and the vendor's copies are deleted (or given up on):
        forget the spill. Idempotent."""
        ...

    async def take(self, spill_id: str, owner: str, seconds: float) -> bool:
        """Hold the spill for `owner` for `seconds` (one replica polls and ingests a batch at
        a time); True if `owner` holds it now. Holding it again extends the hold."""
        ...
