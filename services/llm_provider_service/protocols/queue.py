"""Ports of the request queue: the queue itself, and how fast it drains."""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from common_core.api_models import ComparisonResult, ErrorInfo
from common_core.enums import LLMProviderType, QueueStatus
from services.llm_provider_service.models import (
    ComparisonJob,
    Lease,
    QueueRecord,
    QueueStats,
    ReapReport,
    StoreMemory,
)


class RequestQueue(Protocol):
    """Requests waiting for a provider: priority then FIFO, leased to workers, TTL-bounded.

    Ids are `ComparisonJob.request_id`. Every method raises `QueueUnavailableError` when the
    backing store cannot be reached, and nothing else for infrastructure failures.
    """

    async def enqueue(
        self,
        job: ComparisonJob,
        *,
        priority: int,
        ttl_seconds: int,
        delay_seconds: float = 0.0,
        caller_limit: int | None = None,
    ) -> QueueRecord:
        """Store `job` as QUEUED, expiring `ttl_seconds` from now, and return its record.

        With `delay_seconds`, it becomes claimable only then (a call that just failed is not
        retried at once), keeping its place in the order; a delay reaching past the expiry
        is ignored.

        Idempotent on `job.request_id`: if a record with that id exists, it is returned
        unchanged and nothing is added. Raises `QueueFullError` when the queue holds its
        maximum, and `QuotaExceededError` when `job.caller` already has `caller_limit`
        requests waiting or running (the check and the enqueue are one step, however many
        replicas enqueue). When this returns, the record is as durable as the
        implementation promises; the caller may answer 202 only after it returned.
        """
        ...

    async def claim(self, provider: LLMProviderType, *, limit: int, owner: str) -> list[Lease]:
        """Lease up to `limit` due requests for `provider`, highest priority then oldest first.

        Each claimed record becomes PROCESSING with a new fence token and one more attempt.
        Runs `reap` first. Never returns a request past its `expires_at`.
        """
        ...

    async def heartbeat(self, lease: Lease) -> bool:
        """Extend the lease by the lease period. False if `lease` is no longer current; the
        worker must then abandon the call and drop its result. A lease is current while
        its token is the record's, even past its deadline until a reap reclaims it (the
        same holds for `complete`, `fail` and `release`)."""
        ...

    async def complete(self, lease: Lease, result: ComparisonResult) -> bool:
        """Record `result` and make the request COMPLETED. False (and no change) for a
        stale lease."""
        ...

    async def fail(
        self, lease: Lease, error: ErrorInfo, *, retry_in: float | None
    ) -> QueueStatus | None:
        """Record a failed attempt. With `retry_in` and attempts left and time before
        `expires_at`, the request waits `retry_in` seconds and is queued again (keeping its
        place in the order); otherwise it becomes FAILED with `error`. Returns the new
        status, or None (and no change) for a stale lease."""
        ...

    async def release(self, lease: Lease) -> bool:
        """Give the request back as QUEUED without spending an attempt (shutdown, or the
        breaker opened mid-flight). False for a stale lease."""
        ...

    async def get(self, queue_id: UUID) -> QueueRecord | None:
        """The record, or None if unknown or past its retention."""
        ...

    async def position(self, queue_id: UUID) -> int | None:
        """1 + the claimable requests of its provider ahead of it in the order (those waiting
        out a retry backoff are not counted); None unless QUEUED."""
        ...

    async def cancel(self, queue_id: UUID) -> QueueRecord:
        """Make a QUEUED request CANCELLED and return it. Raises `NotFoundError` for an
        unknown id and `ConflictError` once processing began or the request ended."""
        ...

    async def reap(self) -> ReapReport:
        """Housekeeping that must run even when no work is claimed: requeue (or fail, when
        attempts are spent) requests whose lease expired, move due retries back to the
        queue, expire queued requests past their TTL, drop records past retention.

        The report covers everything ended since the previous report, including what the
        reap inside `claim` ended, so the caller can publish each ending exactly once.
        `get`, `position` and `stats` see a TTL expiry only after a reap."""
        ...

    async def stats(self) -> QueueStats:
        """Depths and the oldest queued request, for health, metrics and wait estimates."""
        ...

    async def memory(self) -> StoreMemory | None:
        """The memory of the store behind the queue and whether it refuses writes for it,
        for health and metrics; None when the queue lives in process memory."""
        ...

    async def wait_for_work(self, max_wait: float) -> None:
        """Return when work may have arrived, or after `max_wait` seconds at the latest.
        Never raises: an unreachable store makes it wait out `max_wait` instead."""
        ...

    async def take_unannounced(self, *, limit: int, hide_seconds: float) -> list[QueueRecord]:
        """Ended requests whose result event is not yet in the outbox, oldest first.

        Every terminal transition marks its request unannounced in the same atomic step, and
        its record outlives the retention until `mark_announced`. Each record returned is
        hidden from other callers for `hide_seconds`, after which it is offered again if
        still unannounced (the caller died half-way).
        """
        ...

    async def mark_announced(self, queue_id: UUID) -> None:
        """The request's result event is in the outbox; never offer it again."""
        ...


class DrainRate(Protocol):
    """How fast each provider's queue drains, for the wait estimate of a 202; shared by every
    replica when durable."""

    async def record(self, provider: LLMProviderType, queue_id: UUID) -> None:
        """Count one completion of the queued request `queue_id`. Never raises."""
        ...

    async def estimate_wait(self, provider: LLMProviderType, position: int | None) -> float | None:
        """Seconds until a request at `position` is likely served, rounded to 0.1: position /
        the rate over the last 300 s; None without a position, with fewer than two completions
        in the window, or when the store cannot be reached. Never raises."""
        ...
