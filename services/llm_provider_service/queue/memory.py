"""A `RequestQueue` kept in this process's memory, for development and tests."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import time
from bisect import bisect_left, insort
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

from common_core.api_models import ComparisonResult, ErrorInfo
from common_core.enums import ErrorCode, LLMProviderType, QueueStatus
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
from services.llm_provider_service.settings import QueueSettings

logger = logging.getLogger(__name__)

# How many ids the shutdown warning names; the rest are counted.
_NAMED_ON_CLOSE = 20

# (order score, enqueue sequence, id): unique, and sorted in claim order.
OrderKey = tuple[int, int, UUID]
# (instant in epoch seconds, id): the heaps below are lazy, so an item is only a hint that
# is checked against the entry when it comes due.
Due = tuple[float, UUID]


@dataclass(slots=True)
class _Entry:
    record: QueueRecord
    key: OrderKey
    expires_at: float
    token: int = 0
    lease_deadline: float = 0.0
    not_before: float | None = None  # set while the request waits: a retry or a delay


@dataclass(slots=True)
class _Findings:
    expired: list[QueueRecord] = field(default_factory=list)
    failed: list[QueueRecord] = field(default_factory=list)
    lease_expiries: int = 0
    promoted: int = 0


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _discard(keys: list[OrderKey], key: OrderKey) -> None:
    index = bisect_left(keys, key)
    if index < len(keys) and keys[index] == key:
        del keys[index]


class InMemoryRequestQueue:
    """The `RequestQueue` contract in one process's memory; nothing survives a restart.

    For development and tests only: a request accepted here is lost when the process stops.
    `clock` (epoch seconds) is the only time source for deadlines and timestamps.

    Per provider, claimable requests sit in a list sorted by order key (`bisect`), and
    waiting ones (a retry's backoff, an enqueue delay) in a second one, so claim, cancel and
    position cost a binary search plus a list shift. Lease deadlines, due times, expiries
    and retention are lazy heaps: an item is checked against its entry when it falls due.
    Transitions found by the reap inside `claim` are reported by the next `reap()`.
    """

    def __init__(self, config: QueueSettings, clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._clock = clock
        self._entries: dict[UUID, _Entry] = {}
        self._ready: defaultdict[LLMProviderType, list[OrderKey]] = defaultdict(list)
        self._delayed: defaultdict[LLMProviderType, list[OrderKey]] = defaultdict(list)
        self._leases: list[Due] = []
        self._retries: list[Due] = []
        self._expiries: list[Due] = []
        self._retention: list[Due] = []
        self._sequence = itertools.count()
        self._tokens = itertools.count(1)
        self._processing = 0
        self._unreported = _Findings()
        self._work = asyncio.Event()
        # Ended requests whose result is not yet in the outbox: id -> when next visible.
        self._unannounced: dict[UUID, float] = {}
        # Announced ended requests, in the order announced -> the bytes of their record, and
        # the sum: what QUEUE_RESULT_MAX_BYTES and QUEUE_RESULT_MAX_COUNT bound. A result still
        # owed to the outbox is kept whole, outside the bounds, until announced.
        self._ended: dict[UUID, int] = {}
        self._ended_bytes = 0

    async def enqueue(
        self,
        job: ComparisonJob,
        *,
        priority: int,
        ttl_seconds: int,
        delay_seconds: float = 0.0,
        caller_limit: int | None = None,
    ) -> QueueRecord:
        if (existing := self._entries.get(job.request_id)) is not None:
            return existing.record.model_copy(deep=True)
        if self._depth() >= self._config.max_size:
            raise queue_full(self._config.max_size)
        if job.caller is not None and caller_limit and self._active(job.caller) >= caller_limit:
            raise caller_queue_full(job.caller, caller_limit)
        now = self._clock()
        score = order_score(math.floor(now * 1000), priority, self._config.priority_boost_ms)
        record = QueueRecord(
            queue_id=job.request_id,
            correlation_id=job.correlation_id,
            provider=job.provider,
            status=QueueStatus.QUEUED,
            priority=priority,
            queued_at=_utc(now),
            updated_at=_utc(now),
            expires_at=_utc(now + ttl_seconds),
            max_attempts=self._config.max_attempts,
            job=job,
        )
        key = (score, next(self._sequence), job.request_id)
        entry = _Entry(record=record, key=key, expires_at=now + ttl_seconds)
        self._entries[job.request_id] = entry
        if delay_seconds > 0 and now + delay_seconds < entry.expires_at:
            self._delay(entry, now + delay_seconds)
        else:
            self._make_ready(entry, now)
        return record.model_copy(deep=True)

    async def claim(self, provider: LLMProviderType, *, limit: int, owner: str) -> list[Lease]:
        now = self._clock()
        self._reap(now, self._unreported)  # one instant for both: nothing expired is leased
        if limit <= 0:
            return []
        ready = self._ready[provider]
        taken = ready[:limit]
        del ready[:limit]
        return [self._lease(self._entries[key[2]], owner, now) for key in taken]

    async def heartbeat(self, lease: Lease) -> bool:
        if (entry := self._current(lease)) is None:
            return False
        entry.lease_deadline = self._clock() + self._config.lease_seconds
        heapq.heappush(self._leases, (entry.lease_deadline, lease.queue_id))
        return True

    async def complete(self, lease: Lease, result: ComparisonResult) -> bool:
        if (entry := self._current(lease)) is None:
            return False
        entry.record.result = result.model_copy(deep=True)
        self._set_status(entry, QueueStatus.COMPLETED, self._clock())
        return True

    async def fail(
        self, lease: Lease, error: ErrorInfo, *, retry_in: float | None
    ) -> QueueStatus | None:
        if (entry := self._current(lease)) is None:
            return None
        now = self._clock()
        record = entry.record
        if (
            retry_in is not None
            and record.attempts < record.max_attempts
            and now + max(retry_in, 0.0) < entry.expires_at
        ):
            self._delay(entry, now + max(retry_in, 0.0))
            self._set_status(entry, QueueStatus.QUEUED, now)
            return QueueStatus.QUEUED
        record.error = error.model_copy()
        self._set_status(entry, QueueStatus.FAILED, now)
        return QueueStatus.FAILED

    async def release(self, lease: Lease) -> bool:
        if (entry := self._current(lease)) is None:
            return False
        entry.record.attempts -= 1  # the attempt never reached a verdict: it is not spent
        self._make_ready(entry, self._clock())
        return True

    async def get(self, queue_id: UUID) -> QueueRecord | None:
        entry = self._entries.get(queue_id)
        return None if entry is None else entry.record.model_copy(deep=True)

    async def position(self, queue_id: UUID) -> int | None:
        """1 + the claimable requests of its provider ahead of it in the order (requests
        waiting out a retry backoff or an enqueue delay are not counted until due), as the
        Redis queue counts."""
        entry = self._entries.get(queue_id)
        if entry is None or entry.record.status is not QueueStatus.QUEUED:
            return None
        return bisect_left(self._ready[entry.record.provider], entry.key) + 1

    async def cancel(self, queue_id: UUID) -> QueueRecord:
        entry = self._entries.get(queue_id)
        if entry is None:
            raise NotFoundError(f"no queued request {queue_id}")
        status = entry.record.status
        if status is not QueueStatus.QUEUED:
            raise ConflictError(
                f"request {queue_id} is {status.value} and can no longer be cancelled",
                details={"queue_id": str(queue_id), "status": status.value},
            )
        self._unqueue(entry)
        self._set_status(entry, QueueStatus.CANCELLED, self._clock())
        return entry.record.model_copy(deep=True)

    async def take_unannounced(self, *, limit: int, hide_seconds: float) -> list[QueueRecord]:
        now = self._clock()
        due = sorted((at, qid) for qid, at in self._unannounced.items() if at <= now)[:limit]
        taken = []
        for _, queue_id in due:
            entry = self._entries.get(queue_id)
            if entry is None:
                del self._unannounced[queue_id]
                continue
            self._unannounced[queue_id] = now + hide_seconds
            taken.append(entry.record.model_copy(deep=True))
        return taken

    async def mark_announced(self, queue_id: UUID) -> None:
        self._unannounced.pop(queue_id, None)
        entry = self._entries.get(queue_id)
        if entry is None or not entry.record.status.is_terminal:
            return
        entry.record.job = announced_form(entry.record.job)
        self._measure_ended(entry.record)
        self._trim_ended()

    async def reap(self) -> ReapReport:
        self._reap(self._clock(), self._unreported)
        found, self._unreported = self._unreported, _Findings()
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
            keys = [*self._ready[provider], *self._delayed[provider]]
            if keys:
                depth[provider] = len(keys)
            for key in keys:
                record = self._entries[key[2]].record
                by_priority[record.priority] += 1
                oldest = record.queued_at if oldest is None else min(oldest, record.queued_at)
        return QueueStats(
            depth=depth,
            depth_by_priority=dict(by_priority),
            processing=self._processing,
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
                await self._work.wait()
        except TimeoutError:
            return
        self._work.clear()

    async def close(self) -> None:
        """At shutdown: a WARNING naming the accepted requests that have not ended (how many
        wait, how many are in flight, and the first ids), since they are lost with the process.
        Nothing is logged when every accepted request has ended."""
        unfinished = [
            entry.record for entry in self._entries.values() if not entry.record.status.is_terminal
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

    def _active(self, caller: str) -> int:
        """How many of `caller`'s requests are waiting or running."""
        return sum(
            1
            for entry in self._entries.values()
            if entry.record.job.caller == caller and not entry.record.status.is_terminal
        )

    def _depth(self) -> int:
        return sum(len(keys) for keys in (*self._ready.values(), *self._delayed.values()))

    def _current(self, lease: Lease) -> _Entry | None:
        """The entry if `lease` is its current lease; None makes the caller change nothing."""
        entry = self._entries.get(lease.queue_id)
        if entry is None or entry.record.status is not QueueStatus.PROCESSING:
            return None
        return entry if entry.token == lease.token else None

    def _lease(self, entry: _Entry, owner: str, now: float) -> Lease:
        record = entry.record
        entry.token = next(self._tokens)
        entry.lease_deadline = now + self._config.lease_seconds
        heapq.heappush(self._leases, (entry.lease_deadline, record.queue_id))
        record.attempts += 1
        self._set_status(entry, QueueStatus.PROCESSING, now)
        return Lease(
            queue_id=record.queue_id,
            token=entry.token,
            owner=owner,
            attempt=record.attempts,
            job=record.job,
            queued_at=record.queued_at,
            claimed_at=_utc(now),
        )

    def _set_status(self, entry: _Entry, status: QueueStatus, now: float) -> None:
        record = entry.record
        self._processing += (status is QueueStatus.PROCESSING) - (
            record.status is QueueStatus.PROCESSING
        )
        record.status = status
        record.updated_at = _utc(now)
        if status.is_terminal:
            drop_at = now + self._config.result_retention_seconds
            heapq.heappush(self._retention, (drop_at, record.queue_id))
            self._unannounced[record.queue_id] = now

    def _measure_ended(self, record: QueueRecord) -> None:
        size = len(record.model_dump_json().encode())
        self._ended_bytes += size - self._ended.pop(record.queue_id, 0)
        self._ended[record.queue_id] = size

    def _forget_ended(self, queue_id: UUID) -> None:
        self._ended_bytes -= self._ended.pop(queue_id, 0)
        del self._entries[queue_id]

    def _over_budget(self) -> bool:
        return (
            len(self._ended) > self._config.result_max_count
            or self._ended_bytes > self._config.result_max_bytes
        )

    def _trim_ended(self) -> None:
        """Delete the oldest announced records while over either bound; waiting, running and
        unannounced ones are not in `_ended` (the check is a safeguard)."""
        if not self._over_budget():
            return
        for queue_id in list(self._ended):
            if queue_id in self._unannounced:
                continue
            self._forget_ended(queue_id)
            if not self._over_budget():
                return

    def _make_ready(self, entry: _Entry, now: float) -> None:
        """Put a new, released, reclaimed or due request in line, at its original place."""
        insort(self._ready[entry.record.provider], entry.key)
        heapq.heappush(self._expiries, (entry.expires_at, entry.record.queue_id))
        if entry.record.status is not QueueStatus.QUEUED:
            self._set_status(entry, QueueStatus.QUEUED, now)
        self._work.set()

    def _delay(self, entry: _Entry, not_before: float) -> None:
        """Put a request in line for later: a retry's backoff, or a delayed first try."""
        entry.not_before = not_before
        insort(self._delayed[entry.record.provider], entry.key)
        heapq.heappush(self._retries, (not_before, entry.record.queue_id))
        heapq.heappush(self._expiries, (entry.expires_at, entry.record.queue_id))

    def _unqueue(self, entry: _Entry) -> None:
        waiting = self._delayed if entry.not_before is not None else self._ready
        _discard(waiting[entry.record.provider], entry.key)
        entry.not_before = None

    def _reap(self, now: float, found: _Findings) -> None:
        self._reap_leases(now, found)
        self._expire_queued(now, found)
        self._promote_retries(now, found)
        while self._retention and self._retention[0][0] <= now:
            queue_id = heapq.heappop(self._retention)[1]
            entry = self._entries.get(queue_id)
            if entry is None or not entry.record.status.is_terminal:
                continue
            if queue_id in self._unannounced:  # its result is owed: keep it until announced
                drop_at = now + self._config.result_retention_seconds
                heapq.heappush(self._retention, (drop_at, queue_id))
                continue
            self._forget_ended(queue_id)

    def _reap_leases(self, now: float, found: _Findings) -> None:
        while self._leases and self._leases[0][0] <= now:
            entry = self._entries.get(heapq.heappop(self._leases)[1])
            if entry is None or entry.record.status is not QueueStatus.PROCESSING:
                continue
            if entry.lease_deadline > now:
                continue  # a heartbeat moved the deadline; its own item is further down
            found.lease_expiries += 1
            record = entry.record
            if now >= entry.expires_at:
                found.expired.append(self._end(entry, QueueStatus.EXPIRED, now))
            elif record.attempts >= record.max_attempts:
                found.failed.append(self._end(entry, QueueStatus.FAILED, now))
            else:
                self._make_ready(entry, now)

    def _expire_queued(self, now: float, found: _Findings) -> None:
        while self._expiries and self._expiries[0][0] <= now:
            entry = self._entries.get(heapq.heappop(self._expiries)[1])
            if entry is not None and entry.record.status is QueueStatus.QUEUED:
                self._unqueue(entry)
                found.expired.append(self._end(entry, QueueStatus.EXPIRED, now))

    def _promote_retries(self, now: float, found: _Findings) -> None:
        while self._retries and self._retries[0][0] <= now:
            entry = self._entries.get(heapq.heappop(self._retries)[1])
            if entry is None or entry.not_before is None or entry.not_before > now:
                continue
            self._unqueue(entry)
            found.promoted += 1
            self._make_ready(entry, now)

    def _end(self, entry: _Entry, status: QueueStatus, now: float) -> QueueRecord:
        """Make a request EXPIRED or FAILED by the reaper, and return a copy for the report."""
        if status is QueueStatus.EXPIRED:
            error = ErrorInfo(
                code=ErrorCode.REQUEST_EXPIRED.value,
                message="the request reached its expires_at before a provider answered it",
            )
        else:
            error = ErrorInfo(
                code=ErrorCode.LEASE_EXPIRED.value,
                message=f"the worker stopped heart-beating its lease on every one of "
                f"{entry.record.max_attempts} attempts; the request is not retried again",
            )
        entry.record.error = error
        self._set_status(entry, status, now)
        return entry.record.model_copy(deep=True)
