"""Between a submission's outcome and what its idempotency key remembers (`IdempotencyEntry`)."""

from __future__ import annotations

from services.llm_provider_service.models import IdempotencyEntry, QueueRecord
from services.llm_provider_service.orchestrator import Completed, Queued


def finished(entry: IdempotencyEntry, outcome: Completed | Queued) -> IdempotencyEntry:
    """`entry` once its request got `outcome`: what a replay answers with."""
    if isinstance(outcome, Completed):
        return entry.model_copy(update={"outcome": "completed", "result": outcome.result})
    return entry.model_copy(
        update={"outcome": "queued", "queued": outcome.response, "retry_after": outcome.retry_after}
    )


def outcome_of(entry: IdempotencyEntry) -> Completed | Queued:
    """The answer a finished entry replays: its 200 or its 202."""
    if entry.outcome == "completed" and entry.result is not None:
        return Completed(entry.result, provider_seconds=0.0)
    assert entry.queued is not None
    return Queued(entry.queued, retry_after=entry.retry_after)


def queued_outcome(record: QueueRecord) -> Queued:
    """The 202 of a request found in the queue (its holder died before saving the key)."""
    return Queued(record.queued_response(), retry_after=1)
