"""`ScriptedBatchAPI`: a `BatchAPI` in memory whose batches move only when a test says, and
that records every call; with `BatchRig`, the batch engine on in-memory parts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from common_core.api_models import LLMConfigOverrides
from common_core.enums import LLMProviderType
from services.llm_provider_service.batch.models import (
    BatchCaps,
    BatchCreateAmbiguousError,
    BatchEntry,
    BatchPoll,
    BatchRow,
    BatchState,
    ProviderBatch,
)


class Crash(BaseException):
    """Raised by a fake to stop the engine where a SIGKILL would: nothing after it runs."""


MADE_THEN_AMBIGUOUS = "made-then-ambiguous"


@dataclass
class FakeBatch:
    batch: ProviderBatch
    tag: str
    entries: list[BatchEntry]
    state: BatchState = BatchState.RUNNING
    rows: list[BatchRow] = field(default_factory=list)
    poll: BatchPoll | None = None  # a FAILED answer with details, when set
    crash_after_rows: int | None = None  # rows() raises Crash after this many
    rows_error: Exception | None = None  # rows() raises it (an odd answer, a bug)


@dataclass
class ScriptedBatchAPI:
    """Each `create` takes the next step of `creates`: None makes the batch, an exception
    is raised, `MADE_THEN_AMBIGUOUS` makes it and raises `BatchCreateAmbiguousError`."""

    provider: LLMProviderType = LLMProviderType.MOCK
    caps: BatchCaps = field(default_factory=lambda: BatchCaps(max_items=100, max_bytes=10**7))
    default_model: str = "scripted-1"
    creates: list[Exception | str | None] = field(default_factory=list)
    batches: dict[str, FakeBatch] = field(default_factory=dict)
    listed: bool = True  # whether find sees batches made by ambiguous creates
    # Find as Anthropic and OpenRouter must: by entry count (the oldest match), not by tag.
    find_by_count: bool = False
    find_error: Exception | None = None  # find raises it (the vendor's list unreadable)
    cancel_keeps_running: bool = False  # a cancel the vendor takes minutes to carry out
    delete_error: Exception | None = None  # delete raises it (not ended yet, unreachable)
    calls: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def model_for(self, overrides: LLMConfigOverrides) -> str:
        return overrides.model_override or self.default_model

    def supports(self, model: str) -> bool:
        return True

    def entry_bytes(self, entry: BatchEntry) -> int:
        return len(entry.prompt.model_dump_json())

    async def create(self, tag: str, model: str, entries: Sequence[BatchEntry]) -> ProviderBatch:
        self.calls.append("create")
        step = self.creates.pop(0) if self.creates else None
        if isinstance(step, Exception):
            raise step
        batch = ProviderBatch(
            provider=self.provider,
            batch_id=f"batch-{len(self.batches) + 1}",
            model=model,
            created_at=self.clock(),
            item_count=len(entries),
        )
        self.batches[batch.batch_id] = FakeBatch(batch, tag, list(entries))
        if step == MADE_THEN_AMBIGUOUS:
            raise BatchCreateAmbiguousError("connection dropped after the body was sent")
        return batch

    async def find(
        self,
        tag: str,
        model: str,
        item_count: int,
        since: datetime,
        exclude: frozenset[str] = frozenset(),
    ) -> ProviderBatch | None:
        self.calls.append("find")
        if self.find_error is not None:
            raise self.find_error
        found = [
            b.batch
            for b in self.batches.values()
            if (b.batch.item_count == item_count if self.find_by_count else b.tag == tag)
            and b.batch.batch_id not in exclude
        ]
        return found[0] if found and self.listed else None

    async def poll(self, batches: Sequence[ProviderBatch]) -> dict[str, BatchPoll]:
        self.calls.append("poll")
        answer = {}
        for batch in batches:
            fake = self.batches[batch.batch_id]
            answer[batch.batch_id] = fake.poll or BatchPoll(fake.state, fake.state.value)
        return answer

    async def rows(self, batch: ProviderBatch) -> AsyncIterator[BatchRow]:
        self.calls.append("rows")
        fake = self.batches[batch.batch_id]
        if fake.rows_error is not None:
            raise fake.rows_error
        for n, row in enumerate(fake.rows):
            if fake.crash_after_rows is not None and n >= fake.crash_after_rows:
                fake.crash_after_rows = None  # the next process reads them all
                raise Crash
            yield row

    async def cancel(self, batch: ProviderBatch) -> None:
        self.calls.append("cancel")
        self.cancelled.append(batch.batch_id)
        if not self.cancel_keeps_running:
            self.batches[batch.batch_id].state = BatchState.CANCELLED

    async def delete(self, batch: ProviderBatch) -> None:
        self.calls.append("delete")
        if self.delete_error is not None:
            raise self.delete_error
        self.deleted.append(batch.batch_id)

    # What a test does to the vendor's side.

    def only_batch(self) -> FakeBatch:
        assert len(self.batches) == 1, list(self.batches)
        return next(iter(self.batches.values()))

    def end(self, batch_id: str, rows: list[BatchRow]) -> None:
        fake = self.batches[batch_id]
        fake.state = BatchState.ENDED
        fake.rows = rows
