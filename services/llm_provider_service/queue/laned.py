"""`LanedRequestQueue`: the one `RequestQueue` the service uses, over its two lanes: realtime
requests for the worker, and `processing_mode: "batch"` requests for the batch engine."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from typing import TypeVar
from uuid import UUID

from common_core.api_models import ComparisonResult, ErrorInfo
from common_core.enums import LLMProviderType, ProcessingMode, QueueStatus
from services.llm_provider_service.errors import NotFoundError, QueueUnavailableError
from services.llm_provider_service.models import (
    ComparisonJob,
    Lease,
    QueueRecord,
    QueueStats,
    ReapReport,
    StoreMemory,
)
from services.llm_provider_service.protocols import RequestQueue

logger = logging.getLogger(__name__)

T = TypeVar("T")

# How many ids `take_unannounced` remembers the lane of, for `mark_announced`: a hint that
# saves asking the other lane (on a cluster, every shard of it); a forgotten one costs that.
_REMEMBERED_IDS = 10_000


def in_batch_lane(job: ComparisonJob) -> bool:
    """Whether `job` belongs to the batch lane: it asked for `processing_mode: "batch"`."""
    return job.request.processing_mode is ProcessingMode.BATCH


class LanedRequestQueue:
    """The `RequestQueue` contract over two queues (documentation/queue.md, "Batch lane").

    `enqueue` puts a batch request in `batch`, any other in `realtime`; a lease's calls go to
    the lane of its job. `claim` and `wait_for_work` serve `realtime` only: the worker never
    sees a batch request (the batch engine claims from `batch` itself, as `BatchQueue`).
    Calls that know only an id (`get`, `position`, `cancel`) look in `realtime`, then in
    `batch`; `mark_announced` goes to the lane `take_unannounced` took the id from. `reap`,
    `stats` and `take_unannounced` cover both; each lane reports its own endings once, so
    the merged report does too. `memory` is the realtime lane's store (one Redis, or a
    cluster whose masters both lanes share).

    Each lane keeps its own limits: `QUEUE_MAX_SIZE` bounds `realtime` as before,
    `BATCH_QUEUE_MAX_SIZE` bounds `batch`, and a caller's `max_queued` counts per lane.
    """

    def __init__(self, realtime: RequestQueue, batch: RequestQueue) -> None:
        self.realtime = realtime
        self.batch = batch
        self._batch_first = False  # which lane `take_unannounced` asks first, alternating
        self._taken_from: OrderedDict[UUID, RequestQueue] = OrderedDict()

    def _lane(self, job: ComparisonJob) -> RequestQueue:
        return self.batch if in_batch_lane(job) else self.realtime

    async def enqueue(
        self,
        job: ComparisonJob,
        *,
        priority: int,
        ttl_seconds: int,
        delay_seconds: float = 0.0,
        caller_limit: int | None = None,
    ) -> QueueRecord:
        return await self._lane(job).enqueue(
            job,
            priority=priority,
            ttl_seconds=ttl_seconds,
            delay_seconds=delay_seconds,
            caller_limit=caller_limit,
        )

    async def claim(self, provider: LLMProviderType, *, limit: int, owner: str) -> list[Lease]:
        """The realtime lane's claim: a batch request is never leased to the worker."""
        return await self.realtime.claim(provider, limit=limit, owner=owner)

    async def heartbeat(self, lease: Lease) -> bool:
        return await self._lane(lease.job).heartbeat(lease)

    async def complete(self, lease: Lease, result: ComparisonResult) -> bool:
        return await self._lane(lease.job).complete(lease, result)

    async def fail(
        self, lease: Lease, error: ErrorInfo, *, retry_in: float | None
    ) -> QueueStatus | None:
        return await self._lane(lease.job).fail(lease, error, retry_in=retry_in)

    async def release(self, lease: Lease) -> bool:
        return await self._lane(lease.job).release(lease)

    async def get(self, queue_id: UUID) -> QueueRecord | None:
        record = await self.realtime.get(queue_id)
        return record if record is not None else await self.batch.get(queue_id)

    async def position(self, queue_id: UUID) -> int | None:
        """Its place in its own lane (and provider), as each lane counts it."""
        place = await self.realtime.position(queue_id)
        return place if place is not None else await self.batch.position(queue_id)

    async def cancel(self, queue_id: UUID) -> QueueRecord:
        try:
            return await self.realtime.cancel(queue_id)
        except NotFoundError:
            return await self.batch.cancel(queue_id)

    async def reap(self) -> ReapReport:
        """Both lanes' reaps, merged. A lane that cannot be reached is left for the next
        pass (its findings stay in its store) rather than losing the other's report, which
        its reap already took; raises only when neither lane could be reaped."""
        reports = await self._both(lambda lane: lane.reap())
        return ReapReport(
            expired=tuple(record for r in reports for record in r.expired),
            failed=tuple(record for r in reports for record in r.failed),
            lease_expiries=sum(r.lease_expiries for r in reports),
            promoted=sum(r.promoted for r in reports),
        )

    async def _both(self, call: Callable[[RequestQueue], Awaitable[T]]) -> list[T]:
        outcomes = await asyncio.gather(
            call(self.realtime), call(self.batch), return_exceptions=True
        )
        done = [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
        for name, outcome in zip(("realtime", "batch"), outcomes, strict=True):
            if isinstance(outcome, QueueUnavailableError) and done:
                logger.warning("the %s lane of the queue could not be reaped: %s", name, outcome)
            elif isinstance(outcome, BaseException):
                raise outcome
        return done

    async def stats(self) -> QueueStats:
        """Both lanes' depths summed per provider and priority; the oldest waiting request
        of either. Raises when either lane cannot be read."""
        every = await asyncio.gather(self.realtime.stats(), self.batch.stats())
        depth: Counter[LLMProviderType] = Counter()
        by_priority: Counter[int] = Counter()
        for stats in every:
            depth.update(stats.depth)
            by_priority.update(stats.depth_by_priority)
        waiting = [s for s in every if s.oldest_queued_at is not None]
        oldest = min(waiting, key=lambda s: s.oldest_queued_at or 0) if waiting else None
        return QueueStats(
            depth={provider: n for provider, n in depth.items() if n > 0},
            depth_by_priority={priority: n for priority, n in by_priority.items() if n > 0},
            processing=sum(stats.processing for stats in every),
            oldest_queued_at=None if oldest is None else oldest.oldest_queued_at,
            oldest_age_seconds=None if oldest is None else oldest.oldest_age_seconds,
        )

    async def memory(self) -> StoreMemory | None:
        return await self.realtime.memory()

    async def wait_for_work(self, max_wait: float) -> None:
        """The realtime lane's: batch work never wakes the worker."""
        await self.realtime.wait_for_work(max_wait)

    async def take_unannounced(self, *, limit: int, hide_seconds: float) -> list[QueueRecord]:
        """Up to `limit` from both lanes, each asked for what the other left; the lane asked
        first alternates, so that neither lane's backlog starves the other's. A lane that
        cannot be reached is skipped (what the other lane gave is not lost with it); raises
        `QueueUnavailableError` only when neither answered."""
        lanes = [self.realtime, self.batch]
        if self._batch_first:
            lanes.reverse()
        self._batch_first = not self._batch_first
        taken: list[QueueRecord] = []
        unreachable: QueueUnavailableError | None = None
        answered = False
        for lane in lanes:
            if len(taken) >= limit:
                break
            try:
                records = await lane.take_unannounced(
                    limit=limit - len(taken), hide_seconds=hide_seconds
                )
            except QueueUnavailableError as exc:
                unreachable = exc
                continue
            answered = True
            for record in records:
                self._taken_from[record.queue_id] = lane
            taken += records
        while len(self._taken_from) > _REMEMBERED_IDS:
            self._taken_from.popitem(last=False)
        if unreachable is not None and not answered:
            raise unreachable
        return taken

    async def mark_announced(self, queue_id: UUID) -> None:
        """Marked in the lane `take_unannounced` took it from; for an id it does not
        remember, in both (the lane that does not hold it changes nothing)."""
        lane = self._taken_from.pop(queue_id, None)
        for each in (lane,) if lane is not None else (self.realtime, self.batch):
            await each.mark_announced(queue_id)
