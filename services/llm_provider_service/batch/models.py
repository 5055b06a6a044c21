"""The values the batch lane passes between its engine, its store and each vendor's Batch API.

A provider batch holds many queued requests, one entry each. An entry's `custom_id` is its
queue id as 32 hex digits (`custom_id_of`), which every vendor accepts (Anthropic's
`^[a-zA-Z0-9_-]{1,64}$` is the strictest), so a result row names its request without any
other lookup. Each entry is its own fresh provider call: two replicate requests for the same
pair are two entries, never one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from common_core.api_models import LLMConfigOverrides
from common_core.enums import LLMProviderType
from services.llm_provider_service.errors import ProviderError
from services.llm_provider_service.models import ComparisonPrompt, Judgement


def custom_id_of(queue_id: UUID) -> str:
    """The entry's id in a provider batch: the queue id's 32 hex digits."""
    return queue_id.hex


def queue_id_of(custom_id: str) -> UUID | None:
    """The queue id a result row names, or None for a row that is not one of ours."""
    try:
        return UUID(hex=custom_id)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class BatchCaps:
    """What one provider batch may hold. The engine fills batches to at most these (bytes
    counted as `BatchAPI.entry_bytes` says), below the vendor's own hard caps."""

    max_items: int
    max_bytes: int


@dataclass(frozen=True, slots=True)
class BatchEntry:
    """One queued request as a batch entry: the prompt exactly as the provider is to see it
    (the job's essay order already applied) and the caller's overrides."""

    custom_id: str
    prompt: ComparisonPrompt
    overrides: LLMConfigOverrides


@dataclass(frozen=True, slots=True)
class ProviderBatch:
    """A batch the provider accepted: enough to poll, read, cancel and delete it after a
    restart. `files` are the vendor's file ids that belong to it (OpenAI's input, output and
    error files), deleted with it."""

    provider: LLMProviderType
    batch_id: str
    model: str
    created_at: datetime
    item_count: int
    files: tuple[str, ...] = ()


class BatchState(StrEnum):
    """Where a provider batch is, in the engine's terms (each vendor's own word is kept in
    `BatchPoll.provider_status`)."""

    RUNNING = "running"  # validating, in progress, finalizing, cancelling: poll again
    ENDED = "ended"  # terminal with per-item rows to read (completed; also a cancelled or
    # expired batch that returns the rows it finished, as Anthropic and OpenAI do)
    FAILED = "failed"  # terminal, no rows: the batch as a whole was refused or failed
    EXPIRED = "expired"  # terminal, no rows: it outlived the vendor's window (Gemini)
    CANCELLED = "cancelled"  # terminal, no rows


@dataclass(frozen=True, slots=True)
class BatchPoll:
    """One look at a provider batch.

    For FAILED: `retryable` is True when the failure is the vendor's capacity (a queue or
    token limit, 429, 5xx) rather than the batch's content, so its entries go back to the
    queue unspent; `entry_errors` names the entries the vendor blamed (OpenAI's validation
    errors carry line numbers), which fail with their error while the others go back."""

    state: BatchState
    provider_status: str
    error: str | None = None
    retryable: bool = False
    entry_errors: dict[str, ProviderError] = field(default_factory=dict)


class RowOutcome(StrEnum):
    SUCCEEDED = "succeeded"  # `judgement` is set, in the order the provider saw the essays
    ERRORED = "errored"  # `error` is set; `error.retryable` decides retry or fail
    NOT_RUN = "not_run"  # expired or cancelled before it ran: back to the queue unspent


@dataclass(frozen=True, slots=True)
class BatchRow:
    """One row of a provider batch's results.

    A SUCCEEDED row's answer is read and checked exactly as the realtime call's is: a body
    outside the judgement schema, a refusal or an answer cut off at the token limit is an
    ERRORED row with `InvalidProviderResponseError` (or `MaxTokensTooLowError`'s provider
    equivalent), never an exception out of `BatchAPI.rows`."""

    custom_id: str
    outcome: RowOutcome
    judgement: Judgement | None = None
    error: ProviderError | None = None


class BatchCreateRefusedError(Exception):
    """The vendor definitely did not make the batch (400, 413, 429, a queue limit).

    `capacity` says the refusal was the vendor's capacity or reach (429, a queue limit, a
    connection never made), not the entries: they go back to the queue unspent and
    submissions to this provider pause (`retry_after` seconds, when given). Otherwise the
    entries themselves were refused: the engine splits the batch to find the bad ones, and
    an entry refused alone spends an attempt."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, capacity: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.capacity = capacity or retry_after is not None


class BatchCreateAmbiguousError(Exception):
    """The create may or may not have made a batch (a timeout, a dropped connection, a 5xx
    after the body was sent). The engine reconciles with `BatchAPI.find`."""


class BatchAPIUnavailableError(Exception):
    """A poll, read, cancel or delete did not get an answer; try again later."""
