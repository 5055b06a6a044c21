"""A `RequestQueue` kept in this process's memory, for development and tests."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from common_core.api_models import ComparisonResult, ErrorInfo
from common_core.enums import LLMProviderType, QueueStatus
from services.llm_provider_service.errors import ConflictError, NotFoundError
from services.llm_provider_service.models import (
    ComparisonJob,
    Lease,
    QueueRecord,
    QueueStats,
    ReapReport,
)
from services.llm_provider_service.queue.config import (
    announced_form,
    caller_queue_full,
    order_score,
    queue_full,
)
from services.llm_provider_service.queue.memory_ledger import Entry, Findings, QueueLedger, utc
from services.llm_provider_service.settings import QueueSettings

logger = logging.getLogger(__name__)

# How many ids the shutdown warning names; the rest are counted.
_NAMED_ON_CLOSE = 20


class InMemoryRequestQueue:
    """The `RequestQueue` contract in one process's memory; nothing survives a restart.

    For development and tests only: a request accepted here is lost when the process stops.
    `clock` (epoch seconds) is the only time source for deadlines and timestamps.

    Its bookkeeping (lines, leases, deadlines, ended records) is a `QueueLedger`
    (`memory_ledger.py`). Transitions found by the reap inside `claim` are reported by the
    next `reap()`.

    With `batch_lane` (the batch lane's queue, documentation/queue.md "Batch lane"),
    `cancel` also ends a PROCESSING request, and the reap expires a PROCESSING request at its
    `expires_at`; either way its lease goes stale at once.
    """

    def __init__(
        self,
        config: QueueSettings,
        clock: Callable[[], float] = time.time,
        *,
        batch_lane: bool = False,
    ) -> None:
        self._config = config
        self._clock = clock
        self._batch_lane = batch_lane
        self._ledger = QueueLedger(config, batch_lane=batch_lane)
        self._sequence = itertools.count()
        self._unreported = Findings()

    async def enqueue(
        self,
        job: ComparisonJob,
        *,
        priority: int,
        ttl_seconds: int,
        delay_seconds: float = 0.0,
        caller_limit: int | None = None,
    ) -> QueueRecord:
        if (existing := self._ledger.entries.get(job.request_id)) is not None:
            return existing.record.model_copy(deep=True)
        if self._ledger.depth() >= self._config.max_size:
            raise queue_full(self._config.max_size)
        if (
            job.caller is not None
            and caller_limit
            and self._ledger.active(job.caller) >= caller_limit
        ):
            raise caller_queue_full(job.caller, caller_limit)
        now = self._clock()
        score = order_score(math.floor(now * 1000), priority, self._config.priority_boost_ms)
        record = QueueRecord(
            queue_id=job.request_id,
            correlation_id=job.correlation_id,
            provider=job.provider,
            status=QueueStatus.QUEUED,
            priority=priority,
            queued_at=utc(now),
            updated_at=utc(now),
            expires_at=utc(now + ttl_seconds),
            max_attempts=self._config.max_attempts,
            job=job,
        )
        key = (score, next(self._sequence), job.request_id)
        entry = Entry(record=record, key=key, expires_at=now + ttl_seconds)
        self._ledger.entries[job.request_id] = entry
        if delay_seconds > 0 and now + delay_seconds < entry.expires_at:
            self._ledger.delay(entry, now + delay_seconds)
        else:
            self._ledger.make_ready(entry, now)
        return record.model_copy(deep=True)

    async def claim(self, provider: LLMProviderType, *, limit: int, owner: str) -> list[Lease]:
        now = self._clock()
        self._ledger.reap(now, self._unreported)  # one instant for both: nothing expired is leased
        if limit <= 0:
            return []
        ready = self._ledger.ready[provider]
        taken = ready[:limit]
        del ready[:limit]
        return [self._ledger.lease(self._ledger.entries[key[2]], owner, now) for key in taken]

    async def heartbeat(self, lease: Lease) -> bool:
        if (entry := self._ledger.current(lease)) is None:
            return False
        entry.lease_deadline = self._clock() + self._config.lease_seconds
        heapq.heappush(self._ledger.leases, (entry.lease_deadline, lease.queue_id))
        return True

    async def complete(self, lease: Lease, result: ComparisonResult) -> bool:
        if (entry := self._ledger.current(lease)) is None:
            return False
        entry.record.result = result.model_copy(deep=True)
        self._ledger.set_status(entry, QueueStatus.COMPLETED, self._clock())
        return True

    async def fail(
        self, lease: Lease, error: ErrorInfo, *, retry_in: float | None
    ) -> QueueStatus | None:
        if (entry := self._ledger.current(lease)) is None:
            return None
        now = self._clock()
        record = entry.record
        if (
            retry_in is not None
            and record.attempts < record.max_attempts
            and now + max(retry_in, 0.0) < entry.expires_at
        ):
            self._ledger.delay(entry, now + max(retry_in, 0.0))
            self._ledger.set_status(entry, QueueStatus.QUEUED, now)
            return QueueStatus.QUEUED
        record.error = error.model_copy()
        self._ledger.set_status(entry, QueueStatus.FAILED, now)
        return QueueStatus.FAILED

    async def release(self, lease: Lease) -> bool:
        if (entry := self._ledger.current(lease)) is None:
            return False
        entry.record.attempts -= 1  # the attempt never reached a verdict: it is not spent
        self._ledger.make_ready(entry, self._clock())
        return True

    async def get(self, queue_id: UUID) -> QueueRecord | None:
        entry = self._ledger.entries.get(queue_id)
        return None if entry is None else entry.record.model_copy(deep=True)

    async def position(self, queue_id: UUID) -> int | None:
        """1 + the claimable requests of its provider ahead of it in the order (requests
        waiting out a retry backoff or an enqueue delay are not counted until due), as the
        Redis queue counts."""
        entry = self._ledger.entries.get(queue_id)
        if entry is None or entry.record.status is not QueueStatus.QUEUED:
            return None
        return bisect_left(self._ledger.ready[entry.record.provider], entry.key) + 1

    async def cancel(self, queue_id: UUID) -> QueueRecord:
        entry = self._ledger.entries.get(queue_id)
        if entry is None:
            raise NotFoundError(f"no queued request {queue_id}")
        status = entry.record.status
        cancellable = status is QueueStatus.QUEUED or (
            self._batch_lane and status is QueueStatus.PROCESSING
        )
        if not cancellable:
            raise ConflictError(
                f"request {queue_id} is {status.value} and can no longer be cancelled",
                details={"queue_id": str(queue_id), "status": status.value},
            )
        if status is QueueStatus.QUEUED:
            self._ledger.unqueue(entry)
        self._ledger.set_status(entry, QueueStatus.CANCELLED, self._clock())
        return entry.record.model_copy(deep=True)

    async def take_unannounced(self, *, limit: int, hide_seconds: float) -> list[QueueRecord]:
        now = self._clock()
        due = sorted((at, qid) for qid, at in self._ledger.unannounced.items() if at <= now)[:limit]
        taken = []
        for _, queue_id in due:
            entry = self._ledger.entries.get(queue_id)
            if entry is None:
                del self._ledger.unannounced[queue_id]
                continue
            self._ledger.unannounced[queue_id] = now + hide_seconds
            taken.append(entry.record.model_copy(deep=True))
        return taken

    async def mark_announced(self, queue_id: UUID) -> None:
        self._ledger.unannounced.pop(queue_id, None)
        entry = self._ledger.entries.get(queue_id)
        if entry is None or not entry.record.status.is_terminal:
            return
        entry.record.job = announced_form(entry.record.job)
        self._ledger.measure_ended(entry.record)
        self._ledger.trim_ended()

    async def reap(self) -> ReapReport:
        self._ledger.reap(self._clock(), self._unreported)
        found, self._unreported = self._unreported, Findings()
        return ReapReport(
            expired=tuple(found.expired),
            failed=tuple(found.failed),
            lease_expiries=found.lease_expiries,
            promoted=found.promoted,
        )

    async def stats(self) -> QueueStats:
        depth: dict[LLMProviderType, int] = {}
        by_priority: Counter[int] = Counter()
        oldest: datetime | None = None
        for provider in LLMProviderType:
            keys = [*self._ledger.ready[provider], *self._ledger.delayed[provider]]
            if keys:
                depth[provider] = len(keys)
            for key in keys:
                record = self._ledger.entries[key[2]].record
                by_priority[record.priority] += 1
                oldest = record.queued_at if oldest is None else min(oldest, record.queued_at)
        return QueueStats(
            depth=depth,
            depth_by_priority=dict(by_priority),
            processing=self._ledger.processing,
            oldest_queued_at=oldest,
            oldest_age_seconds=None if oldest is None else self._clock() - oldest.timestamp(),
        )

    async def memory(self) -> None:
        """Nothing to report: this queue lives in the process's own memory."""
        return None

    async def wait_for_work(self, max_wait: float) -> None:
        # The event stays set until a waiter consumes it, so work that arrives between a
        # worker's empty claim and its wait is not missed.
        try:
            async with asyncio.timeout(max_wait):
                await self._ledger.work.wait()
        except TimeoutError:
            return
        self._ledger.work.clear()

    async def close(self) -> None:
        """At shutdown: a WARNING naming the accepted requests that have not ended (how many
        wait, how many are in flight, and the first ids), since they are lost with the process.
        Nothing is logged when every accepted request has ended."""
        unfinished = [
            entry.record
            for entry in self._ledger.entries.values()
            if not entry.record.status.is_terminal
        ]
        if not unfinished:
            return
        in_flight = sum(1 for record in unfinished if record.status is QueueStatus.PROCESSING)
        named = ", ".join(str(record.queue_id) for record in unfinished[:_NAMED_ON_CLOSE])
        more = len(unfinished) - _NAMED_ON_CLOSE
        logger.warning(
            "in-memory queue stopped with %d accepted requests unfinished (%d waiting, %d in "
            "flight); they are lost, since this queue keeps nothing across a restart: %s%s",
            len(unfinished),
            len(unfinished) - in_flight,
            in_flight,
            named,
            f" and {more} more" if more > 0 else "",
        )
