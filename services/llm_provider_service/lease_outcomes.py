"""`LeaseOutcomes`: how a leased request's outcome is written to the queue and counted, shared
by the queue worker and the batch engine so that both end a request the same way."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable
from typing import TypeVar

from common_core.api_models import ComparisonResult, ErrorInfo
from common_core.enums import QueueStatus
from services.llm_provider_service.errors import (
    MaxTokensTooLowError,
    ProviderError,
    QueueUnavailableError,
)
from services.llm_provider_service.lifecycle_events import LifecycleEvents
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.models import Lease
from services.llm_provider_service.protocols import DrainRate, RequestQueue
from services.llm_provider_service.queue_events import announce_status
from services.llm_provider_service.settings import Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")
_LANDED_PATIENCE_SECONDS = 300.0


class LeaseOutcomes:
    """Completes, fails and releases leases on `queue`, with the drain rate, the queue-wait
    and transition metrics and the `queue_status_changed` events that go with them.

    None of its methods raises for an unreachable queue: the lease then simply expires and
    the request is reclaimed later (at-least-once); a lease lost meanwhile changes nothing.
    """

    def __init__(
        self,
        *,
        queue: RequestQueue,
        events: LifecycleEvents,
        metrics: ServiceMetrics,
        drain_rate: DrainRate,
        settings: Settings,
        rng: random.Random | None = None,
    ) -> None:
        self._queue = queue
        self._events = events
        self._metrics = metrics
        self._drain_rate = drain_rate
        self._settings = settings
        self._rng = rng or random.Random()

    async def completed(self, lease: Lease, result: ComparisonResult, *, wait: float) -> bool:
        """Store `result` (COMPLETED) and count it, `wait` seconds after it was queued; True
        when our result is the one stored, False when the lease was lost (result dropped)."""
        stored = await self.safely(self._queue.complete(lease, result))
        if stored is None:  # the queue did not answer: the write may or may not have landed
            stored = await self._landed(lease, result)
        if not stored:
            logger.warning("late result for %s dropped: lease no longer held", lease.queue_id)
            return False
        await self._drain_rate.record(lease.job.provider, lease.queue_id)
        self._metrics.queue_wait.labels(lease.job.provider.value).observe(max(0.0, wait))
        self._metrics.record_transition(QueueStatus.COMPLETED)
        await announce_status(self._events, lease, QueueStatus.COMPLETED, None)
        return True

    async def _landed(self, lease: Lease, result: ComparisonResult) -> bool:
        """Complete again once the queue answers: `complete` is idempotent for our token, so
        True means our result is the one stored (whether the first write landed or this one
        did) and False that the lease was lost meanwhile. Gives up only after a long outage
        (`_LANDED_PATIENCE_SECONDS`), when the lease has long been reclaimed anyway."""
        deadline = time.monotonic() + _LANDED_PATIENCE_SECONDS
        while time.monotonic() < deadline:
            try:
                return await self._queue.complete(lease, result)
            except QueueUnavailableError:
                await asyncio.sleep(0.5)
        return False

    async def failed(
        self, lease: Lease, info: ErrorInfo, exc: ProviderError | MaxTokensTooLowError | None
    ) -> QueueStatus | None:
        """Record a failed attempt: retried with `backoff` when `exc` is retryable (or
        unknown: None), FAILED otherwise. Returns the new status, None for a lost lease."""
        retryable = exc is None or exc.retryable
        retry_in = self.backoff(lease.attempt, exc.retry_after if exc else None)
        status = await self.safely(
            self._queue.fail(lease, info, retry_in=retry_in if retryable else None)
        )
        if status is QueueStatus.QUEUED:
            self._metrics.queue_retries.labels(lease.job.provider.value).inc()
        elif status is QueueStatus.FAILED:
            self._metrics.record_transition(QueueStatus.FAILED)
            await announce_status(self._events, lease, QueueStatus.FAILED, info)
        return status

    async def released(self, lease: Lease) -> bool | None:
        """Give the request back unspent; False for a lost lease, None if the queue did
        not answer."""
        return await self.safely(self._queue.release(lease))

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff, drawn uniformly between the base delay and the attempt's
        ceiling (jitter spreads a recovering provider's backlog), never shorter than the
        vendor's Retry-After, which may exceed QUEUE_RETRY_MAX_SECONDS: the vendor knows."""
        base = self._settings.queue.retry_base_seconds
        ceiling = min(self._settings.queue.retry_max_seconds, base * 2 ** max(0, attempt - 1))
        delay = self._rng.uniform(base, max(base, ceiling))
        return max(delay, retry_after or 0.0)

    async def safely(self, op: Awaitable[T]) -> T | None:
        """Run a queue write; if the queue is unreachable the lease simply expires and the
        request is reclaimed later (at-least-once), so log and carry on."""
        try:
            return await op
        except QueueUnavailableError as exc:
            logger.warning("queue write failed, the lease will expire and be retried: %s", exc)
            return None
