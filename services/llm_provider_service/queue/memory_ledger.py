"""The in-memory queue's bookkeeping: where each request is, its lease, and what happens to it
when a deadline passes (`InMemoryRequestQueue` in `memory.py` holds one)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from bisect import bisect_left, insort
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

from common_core.api_models import ErrorInfo
from common_core.enums import ErrorCode, LLMProviderType, QueueStatus
from services.llm_provider_service.models import Lease, QueueRecord
from services.llm_provider_service.settings import QueueSettings

# (order score, enqueue sequence, id): unique, and sorted in claim order.
OrderKey = tuple[int, int, UUID]
# (instant in epoch seconds, id): the heaps below are lazy, so an item is only a hint that
# is checked against the entry when it comes due.
Due = tuple[float, UUID]


@dataclass(slots=True)
class Entry:
    record: QueueRecord
    key: OrderKey
    expires_at: float
    token: int = 0
    lease_deadline: float = 0.0
    not_before: float | None = None  # set while the request waits: a retry or a delay


@dataclass(slots=True)
class Findings:
    """What reaps found, not yet reported."""

    expired: list[QueueRecord] = field(default_factory=list)
    failed: list[QueueRecord] = field(default_factory=list)
    lease_expiries: int = 0
    promoted: int = 0


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _discard(keys: list[OrderKey], key: OrderKey) -> None:
    index = bisect_left(keys, key)
    if index < len(keys) and keys[index] == key:
        del keys[index]


class QueueLedger:
    """Every request's entry, and the lines and deadlines it sits in.

    Per provider, claimable requests sit in a list sorted by order key (`bisect`), and
    waiting ones (a retry's backoff, an enqueue delay) in a second one, so claim, cancel and
    position cost a binary search plus a list shift. Lease deadlines, due times, expiries
    and retention are lazy heaps: an item is checked against its entry when it falls due.
    The caller passes `now` (epoch seconds) to every change.
    """

    def __init__(self, config: QueueSettings, *, batch_lane: bool = False) -> None:
        self._config = config
        # The batch lane expires PROCESSING requests at their TTL too (`_expire_queued`).
        self._batch_lane = batch_lane
        self.entries: dict[UUID, Entry] = {}
        self.ready: defaultdict[LLMProviderType, list[OrderKey]] = defaultdict(list)
        self.delayed: defaultdict[LLMProviderType, list[OrderKey]] = defaultdict(list)
        self.leases: list[Due] = []
        self._retries: list[Due] = []
        self._expiries: list[Due] = []
        self._retention: list[Due] = []
        self._tokens = itertools.count(1)
        self.processing = 0
        self.work = asyncio.Event()  # set whenever a request becomes claimable
        # Ended requests whose result is not yet in the outbox: id -> when next visible.
        self.unannounced: dict[UUID, float] = {}
        # Announced ended requests, in the order announced -> the bytes of their record, and
        # the sum: what QUEUE_RESULT_MAX_BYTES and QUEUE_RESULT_MAX_COUNT bound. A result still
        # owed to the outbox is kept whole, outside the bounds, until announced.
        self._ended: dict[UUID, int] = {}
        self._ended_bytes = 0

    def active(self, caller: str) -> int:
        """How many of `caller`'s requests are waiting or running."""
        return sum(
            1
            for entry in self.entries.values()
            if entry.record.job.caller == caller and not entry.record.status.is_terminal
        )

    def depth(self) -> int:
        """What the queue's maximum bounds: waiting requests, and on the batch lane also
        those in a provider batch (as the Redis batch lane counts)."""
        waiting = sum(len(keys) for keys in (*self.ready.values(), *self.delayed.values()))
        return waiting + (self.processing if self._batch_lane else 0)

    def current(self, lease: Lease) -> Entry | None:
        """The entry if `lease` is its current lease; None makes the caller change nothing."""
        entry = self.entries.get(lease.queue_id)
        if entry is None or entry.record.status is not QueueStatus.PROCESSING:
            return None
        return entry if entry.token == lease.token else None

    def lease(self, entry: Entry, owner: str, now: float) -> Lease:
        record = entry.record
        entry.token = next(self._tokens)
        entry.lease_deadline = now + self._config.lease_seconds
        heapq.heappush(self.leases, (entry.lease_deadline, record.queue_id))
        record.attempts += 1
        self.set_status(entry, QueueStatus.PROCESSING, now)
        return Lease(
            queue_id=record.queue_id,
            token=entry.token,
            owner=owner,
            attempt=record.attempts,
            job=record.job,
            queued_at=record.queued_at,
            claimed_at=utc(now),
            expires_at=record.expires_at,
        )

    def set_status(self, entry: Entry, status: QueueStatus, now: float) -> None:
        record = entry.record
        self.processing += (status is QueueStatus.PROCESSING) - (
            record.status is QueueStatus.PROCESSING
        )
        record.status = status
        record.updated_at = utc(now)
        if status.is_terminal:
            drop_at = now + self._config.result_retention_seconds
            heapq.heappush(self._retention, (drop_at, record.queue_id))
            self.unannounced[record.queue_id] = now

    def measure_ended(self, record: QueueRecord) -> None:
        size = len(record.model_dump_json().encode())
        self._ended_bytes += size - self._ended.pop(record.queue_id, 0)
        self._ended[record.queue_id] = size

    def _forget_ended(self, queue_id: UUID) -> None:
        self._ended_bytes -= self._ended.pop(queue_id, 0)
        del self.entries[queue_id]

    def _over_budget(self) -> bool:
        return (
            len(self._ended) > self._config.result_max_count
            or self._ended_bytes > self._config.result_max_bytes
        )

    def trim_ended(self) -> None:
        """Delete the oldest announced records while over either bound; waiting, running and
        unannounced ones are not in `_ended` (the check is a safeguard)."""
        if not self._over_budget():
            return
        for queue_id in list(self._ended):
            if queue_id in self.unannounced:
                continue
            self._forget_ended(queue_id)
            if not self._over_budget():
                return

    def make_ready(self, entry: Entry, now: float) -> None:
        """Put a new, released, reclaimed or due request in line, at its original place."""
        insort(self.ready[entry.record.provider], entry.key)
        heapq.heappush(self._expiries, (entry.expires_at, entry.record.queue_id))
        if entry.record.status is not QueueStatus.QUEUED:
            self.set_status(entry, QueueStatus.QUEUED, now)
        self.work.set()

    def delay(self, entry: Entry, not_before: float) -> None:
        """Put a request in line for later: a retry's backoff, or a delayed first try."""
        entry.not_before = not_before
        insort(self.delayed[entry.record.provider], entry.key)
        heapq.heappush(self._retries, (not_before, entry.record.queue_id))
        heapq.heappush(self._expiries, (entry.expires_at, entry.record.queue_id))

    def unqueue(self, entry: Entry) -> None:
        waiting = self.delayed if entry.not_before is not None else self.ready
        _discard(waiting[entry.record.provider], entry.key)
        entry.not_before = None

    def reap(self, now: float, found: Findings) -> None:
        self._reap_leases(now, found)
        self._expire_queued(now, found)
        self._promote_retries(now, found)
        while self._retention and self._retention[0][0] <= now:
            queue_id = heapq.heappop(self._retention)[1]
            entry = self.entries.get(queue_id)
            if entry is None or not entry.record.status.is_terminal:
                continue
            if queue_id in self.unannounced:  # its result is owed: keep it until announced
                drop_at = now + self._config.result_retention_seconds
                heapq.heappush(self._retention, (drop_at, queue_id))
                continue
            self._forget_ended(queue_id)

    def _reap_leases(self, now: float, found: Findings) -> None:
        while self.leases and self.leases[0][0] <= now:
            entry = self.entries.get(heapq.heappop(self.leases)[1])
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
                self.make_ready(entry, now)

    def _expire_queued(self, now: float, found: Findings) -> None:
        while self._expiries and self._expiries[0][0] <= now:
            entry = self.entries.get(heapq.heappop(self._expiries)[1])
            if entry is None:
                continue
            if entry.record.status is QueueStatus.QUEUED:
                self.unqueue(entry)
                found.expired.append(self._end(entry, QueueStatus.EXPIRED, now))
            elif self._batch_lane and entry.record.status is QueueStatus.PROCESSING:
                # In a provider batch: a result arriving after the TTL is dropped (its
                # lease is stale once the status changed).
                found.expired.append(self._end(entry, QueueStatus.EXPIRED, now))

    def _promote_retries(self, now: float, found: Findings) -> None:
        while self._retries and self._retries[0][0] <= now:
            entry = self.entries.get(heapq.heappop(self._retries)[1])
            if entry is None or entry.not_before is None or entry.not_before > now:
                continue
            self.unqueue(entry)
            found.promoted += 1
            self.make_ready(entry, now)

    def _end(self, entry: Entry, status: QueueStatus, now: float) -> QueueRecord:
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
        self.set_status(entry, status, now)
        return entry.record.model_copy(deep=True)
