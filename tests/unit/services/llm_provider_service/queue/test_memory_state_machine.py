"""A model-based test of `InMemoryRequestQueue`: random operations, invariants after each (R14).

The machine drives the queue only through the `RequestQueue` protocol and keeps the least
model that states the invariants: the last lease handed out per request and until when the
model believes it is valid, a snapshot of every request once it ended, and which requests the
reaper has reported.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Coroutine
from typing import Any, TypeVar
from uuid import UUID

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
)

from common_core.api_models import ErrorInfo
from common_core.enums import LLMProviderType, QueueStatus
from services.llm_provider_service.errors import ConflictError, NotFoundError, QueueFullError
from services.llm_provider_service.models import ComparisonJob, Lease, QueueRecord
from services.llm_provider_service.queue.config import order_score
from services.llm_provider_service.queue.memory import InMemoryRequestQueue
from services.llm_provider_service.settings import QueueSettings
from tests.factories import FakeClock, make_job, make_result

T = TypeVar("T")
CONFIG = QueueSettings(
    max_size=6,
    max_attempts=2,  # small, so that running out of attempts is reached often
    lease_seconds=10.0,
    priority_boost_seconds=1.0,
    result_retention_seconds=100.0,
)
ERROR = ErrorInfo(code="PROVIDER_UNAVAILABLE", message="the vendor answered 503")
# Weighted choices steer the runs to the interesting paths (the same request claimed again
# after its lease lapsed, attempts running out, retries meeting the TTL) within few examples.
PROVIDERS = st.sampled_from([LLMProviderType.MOCK] * 3 + [LLMProviderType.OPENAI])
# Multiples of half a second add up exactly in floating point, so the model and the queue
# agree on ties; the sizes straddle the lease period (10 s) and the TTLs.
SECONDS = st.sampled_from([0.0, 0.5, 2.0, 5.0, 9.5, 10.0, 10.5, 10.5, 10.5, 30.0, 60.0])
TTLS = st.sampled_from([1, 10, 30, 60, 300, 300])
RETRIES = st.none() | SECONDS
ACTIONS = st.sampled_from(["hold", "heartbeat", "complete", "fail", "release"])
AFTER_CLAIM = st.sampled_from(["hold", "hold", "hold", "complete", "fail", "release"])
REAPER_CODES = {"REQUEST_EXPIRED", "LEASE_EXPIRED"}


class QueueMachine(RuleBasedStateMachine):
    ids: Bundle[UUID] = Bundle("ids")
    leases: Bundle[Lease] = Bundle("leases")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        self.queue = InMemoryRequestQueue(CONFIG, self.clock)
        self.jobs: dict[UUID, ComparisonJob] = {}
        self.ended: dict[UUID, QueueRecord] = {}  # first terminal snapshot of each request
        self.current: dict[UUID, Lease] = {}  # the last lease handed out for each request
        self.held: dict[UUID, float] = {}  # requests the model believes leased, and until
        self.reported: set[UUID] = set()  # requests a reap report announced as ended
        self.last_token = 0

    def teardown(self) -> None:
        self.loop.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def get(self, queue_id: UUID) -> QueueRecord | None:
        return self.run(self.queue.get(queue_id))

    def is_current(self, lease: Lease) -> bool:
        record = self.get(lease.queue_id)
        valid = record is not None and record.status is QueueStatus.PROCESSING
        return valid and self.current[lease.queue_id].token == lease.token

    def check_leases_after_reap(self, claimed: set[UUID]) -> None:
        """A reap takes back every lease past its deadline and no lease before it."""
        now = self.clock()
        for queue_id, deadline in list(self.held.items()):
            record = self.get(queue_id)
            assert record is not None
            if deadline > now or queue_id in claimed:
                assert record.status is QueueStatus.PROCESSING, "a valid lease was taken back"
                continue
            if now >= record.expires_at.timestamp():
                assert record.status is QueueStatus.EXPIRED
            elif record.attempts >= record.max_attempts:
                assert record.status is QueueStatus.FAILED
                assert record.error is not None
                assert record.error.code == "LEASE_EXPIRED"
            else:
                assert record.status is QueueStatus.QUEUED, "a lapsed lease was not requeued"
            del self.held[queue_id]

    # -- rules -----------------------------------------------------------------------------

    @initialize(target=ids, jobs=st.lists(st.tuples(PROVIDERS, TTLS), min_size=1, max_size=4))
    def start_with(self, jobs: list[tuple[LLMProviderType, int]]) -> MultipleResults[UUID]:
        created = [self.add(make_job(provider), 5, ttl, 0.0) for provider, ttl in jobs]
        return multiple(*(queue_id for queue_id in created if queue_id is not None))

    @rule(
        target=ids,
        provider=PROVIDERS,
        priority=st.integers(0, 10),
        ttl=TTLS,
        delay=st.sampled_from([0.0, 0.0, 5.0, 60.0]),
    )
    def enqueue(
        self, provider: LLMProviderType, priority: int, ttl: int, delay: float
    ) -> MultipleResults[UUID]:
        queue_id = self.add(make_job(provider), priority, ttl, delay)
        return multiple() if queue_id is None else multiple(queue_id)

    def add(self, job: ComparisonJob, priority: int, ttl: int, delay: float) -> UUID | None:
        depth = self.run(self.queue.stats()).total_depth
        try:
            record = self.run(
                self.queue.enqueue(job, priority=priority, ttl_seconds=ttl, delay_seconds=delay)
            )
        except QueueFullError:
            assert depth >= CONFIG.max_size
            return None
        assert depth < CONFIG.max_size
        assert record.status is QueueStatus.QUEUED
        assert record.attempts == 0
        self.jobs[job.request_id] = job
        return job.request_id

    @rule(queue_id=ids, priority=st.integers(0, 10))
    def enqueue_again(self, queue_id: UUID, priority: int) -> None:
        before = self.get(queue_id)
        if before is None:
            return  # dropped after retention; the id would be new again
        again = self.run(self.queue.enqueue(self.jobs[queue_id], priority=priority, ttl_seconds=1))
        assert again == before
        assert self.get(queue_id) == before

    @rule(
        target=leases,
        provider=PROVIDERS,
        limit=st.sampled_from([1, 1, 2, 3, 0]),
        then=AFTER_CLAIM,
        stale=ACTIONS,
        retry=RETRIES,
    )
    def claim(
        self, provider: LLMProviderType, limit: int, then: str, stale: str, retry: float | None
    ) -> MultipleResults[Lease]:
        """Claim; try the previous lease of each reclaimed request, which must be refused;
        then act at once with the first new lease, as a worker would."""
        now = self.clock()
        previous = dict(self.current)
        claimed = self.run(self.queue.claim(provider, limit=limit, owner="w"))
        assert len(claimed) <= limit
        scores = []
        for lease in claimed:
            record = self.get(lease.queue_id)
            assert record is not None
            assert record.provider is provider
            assert record.status is QueueStatus.PROCESSING
            assert lease.attempt == record.attempts <= record.max_attempts
            assert now < record.expires_at.timestamp(), "claimed after expires_at"
            assert lease.token > self.last_token, "fence tokens must grow"
            held_until = self.held.get(lease.queue_id, -math.inf)
            assert held_until <= now, "leased to a second holder while the first lease is valid"
            self.last_token = lease.token
            self.current[lease.queue_id] = lease
            self.held[lease.queue_id] = now + CONFIG.lease_seconds
            queued_ms = math.floor(record.queued_at.timestamp() * 1000)
            scores.append(order_score(queued_ms, record.priority, CONFIG.priority_boost_ms))
        assert scores == sorted(scores), "claimed out of order"
        self.check_leases_after_reap(claimed={lease.queue_id for lease in claimed})
        for lease in claimed:
            if lease.queue_id in previous:
                self.use_lease(previous[lease.queue_id], stale, retry)
        if claimed:
            self.use_lease(claimed[0], then, retry)
        return multiple(*claimed)

    @rule(lease=leases, action=ACTIONS, retry=RETRIES)
    def use_lease(self, lease: Lease, action: str, retry: float | None) -> None:
        """Act with any lease handed out so far: the current one, or a stale one."""
        if action == "heartbeat":
            self.heartbeat(lease)
        elif action == "complete":
            self.complete(lease)
        elif action == "fail":
            self.fail(lease, retry)
        elif action == "release":
            self.release(lease)

    def heartbeat(self, lease: Lease) -> None:
        valid, before = self.is_current(lease), self.get(lease.queue_id)
        assert self.run(self.queue.heartbeat(lease)) is valid
        if valid:
            self.held[lease.queue_id] = self.clock() + CONFIG.lease_seconds
        else:
            assert self.get(lease.queue_id) == before

    def complete(self, lease: Lease) -> None:
        valid, before = self.is_current(lease), self.get(lease.queue_id)
        result = make_result(self.jobs[lease.queue_id])
        assert self.run(self.queue.complete(lease, result)) is valid
        after = self.get(lease.queue_id)
        if valid:
            assert after is not None
            assert after.status is QueueStatus.COMPLETED
            assert after.result == result
            del self.held[lease.queue_id]
        else:
            assert after == before

    def fail(self, lease: Lease, retry_in: float | None) -> None:
        valid, before = self.is_current(lease), self.get(lease.queue_id)
        status = self.run(self.queue.fail(lease, ERROR, retry_in=retry_in))
        after = self.get(lease.queue_id)
        if not valid:
            assert status is None
            assert after == before
            return
        assert before is not None
        assert after is not None
        retries = (
            retry_in is not None
            and before.attempts < before.max_attempts
            and self.clock() + retry_in < before.expires_at.timestamp()
        )
        assert status is (QueueStatus.QUEUED if retries else QueueStatus.FAILED)
        assert after.status is status
        assert after.attempts == before.attempts
        del self.held[lease.queue_id]

    def release(self, lease: Lease) -> None:
        valid, before = self.is_current(lease), self.get(lease.queue_id)
        assert self.run(self.queue.release(lease)) is valid
        after = self.get(lease.queue_id)
        if valid:
            assert before is not None
            assert after is not None
            assert after.status is QueueStatus.QUEUED
            assert after.attempts == before.attempts - 1
            del self.held[lease.queue_id]
        else:
            assert after == before

    @rule(queue_id=ids)
    def cancel(self, queue_id: UUID) -> None:
        before = self.get(queue_id)
        if before is None:
            with pytest.raises(NotFoundError):
                self.run(self.queue.cancel(queue_id))
        elif before.status is QueueStatus.QUEUED:
            cancelled = self.run(self.queue.cancel(queue_id))
            assert cancelled.status is QueueStatus.CANCELLED
        else:
            with pytest.raises(ConflictError):
                self.run(self.queue.cancel(queue_id))
            assert self.get(queue_id) == before

    @rule(seconds=SECONDS, beat=st.booleans())
    def advance(self, seconds: float, beat: bool) -> None:
        """Let time pass; with `beat`, the workers still in time heartbeat their leases."""
        self.clock.advance(seconds)
        if beat:
            for queue_id, deadline in list(self.held.items()):
                if deadline > self.clock():
                    self.heartbeat(self.current[queue_id])

    @rule(periods=st.integers(1, 3))
    def live_workers(self, periods: int) -> None:
        """Several lease periods pass while the holders heartbeat every half period and the
        reaper runs: no held lease may be taken back (R6)."""
        for _ in range(2 * periods):
            self.advance(CONFIG.lease_seconds / 2, beat=True)
            self.reap()

    @rule()
    def reap(self) -> None:
        report = self.run(self.queue.reap())
        assert report.lease_expiries >= len(report.failed)
        for record in report.expired:
            assert record.status is QueueStatus.EXPIRED
            assert record.error is not None
            assert record.error.code == "REQUEST_EXPIRED"
        for record in report.failed:
            assert record.status is QueueStatus.FAILED
            assert record.attempts == record.max_attempts
            assert record.updated_at < record.expires_at, "past its TTL it is EXPIRED instead"
        for record in (*report.expired, *report.failed):
            assert record.queue_id not in self.reported, "an ending was reported twice"
            self.reported.add(record.queue_id)
        for queue_id in self.jobs:  # claim's own reaps included: no ending goes unreported
            latest = self.get(queue_id)
            error = None if latest is None else latest.error
            if error is not None and error.code in REAPER_CODES:
                assert queue_id in self.reported, "the reaper ended a request silently"
        self.check_leases_after_reap(claimed=set())

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def every_request_has_one_consistent_status(self) -> None:
        counts = dict.fromkeys(QueueStatus, 0)
        for queue_id in self.jobs:
            record = self.get(queue_id)
            if record is None:
                ended = self.ended.get(queue_id)
                assert ended is not None, "a request vanished before it ended"
                retained_to = ended.updated_at.timestamp() + CONFIG.result_retention_seconds
                assert self.clock() >= retained_to, "dropped before its retention passed"
                continue
            counts[record.status] += 1
            assert 0 <= record.attempts <= record.max_attempts == CONFIG.max_attempts
            position = self.run(self.queue.position(queue_id))
            assert (position is not None) is (record.status is QueueStatus.QUEUED)
            if record.status is QueueStatus.PROCESSING:
                assert queue_id in self.held
                assert self.current[queue_id].attempt == record.attempts
            if queue_id in self.ended:
                assert record == self.ended[queue_id], "an ended request changed"
            elif record.status.is_terminal:
                self.ended[queue_id] = record
        stats = self.run(self.queue.stats())
        assert stats.total_depth == counts[QueueStatus.QUEUED]
        assert stats.processing == counts[QueueStatus.PROCESSING]
        assert sum(stats.depth_by_priority.values()) == stats.total_depth


QueueMachine.TestCase.settings = settings(
    max_examples=100, stateful_step_count=30, deadline=None, database=None
)
TestQueueMachine = QueueMachine.TestCase
