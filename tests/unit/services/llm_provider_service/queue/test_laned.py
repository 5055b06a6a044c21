"""`LanedRequestQueue`: batch requests in their own lane, which the worker never claims."""

from __future__ import annotations

from typing import Any

import pytest

from common_core.api_models import ErrorInfo
from common_core.enums import LLMProviderType, ProcessingMode, QueueStatus
from services.llm_provider_service.errors import NotFoundError, QueueUnavailableError
from services.llm_provider_service.models import ComparisonJob, QueueRecord, ReapReport
from services.llm_provider_service.queue.laned import LanedRequestQueue
from services.llm_provider_service.queue.memory import InMemoryRequestQueue
from services.llm_provider_service.settings import QueueSettings
from tests.factories import FakeClock, make_job, make_request, make_result

MOCK = LLMProviderType.MOCK
ERROR = ErrorInfo(code="PROVIDER_UNAVAILABLE", message="the vendor answered 503")
CONFIG = QueueSettings(max_size=10, max_attempts=3, lease_seconds=10.0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def realtime(clock: FakeClock) -> InMemoryRequestQueue:
    return InMemoryRequestQueue(CONFIG, clock)


@pytest.fixture
def batch(clock: FakeClock) -> InMemoryRequestQueue:
    return InMemoryRequestQueue(CONFIG, clock, batch_lane=True)


@pytest.fixture
def laned(realtime: InMemoryRequestQueue, batch: InMemoryRequestQueue) -> LanedRequestQueue:
    return LanedRequestQueue(realtime, batch)


def batch_job(provider: LLMProviderType = MOCK) -> ComparisonJob:
    return make_job(provider, request=make_request(processing_mode=ProcessingMode.BATCH))


def async_job(provider: LLMProviderType = MOCK) -> ComparisonJob:
    return make_job(provider, request=make_request(processing_mode=ProcessingMode.ASYNC))


async def test_enqueue_routes_by_processing_mode(laned, realtime, batch):
    waiting, batched = async_job(), batch_job()

    await laned.enqueue(waiting, priority=5, ttl_seconds=60)
    await laned.enqueue(batched, priority=5, ttl_seconds=60)

    assert await realtime.get(waiting.request_id) is not None
    assert await realtime.get(batched.request_id) is None
    assert await batch.get(batched.request_id) is not None
    assert await batch.get(waiting.request_id) is None


async def test_the_worker_never_claims_a_batch_request(laned, batch):
    batched = batch_job()
    await laned.enqueue(batched, priority=9, ttl_seconds=60)

    assert await laned.claim(MOCK, limit=10, owner="worker") == []

    leases = await batch.claim(MOCK, limit=10, owner="engine")  # the engine's own lane
    assert [lease.queue_id for lease in leases] == [batched.request_id]


async def test_a_lease_is_settled_in_its_own_lane(laned, batch):
    batched = batch_job()
    await laned.enqueue(batched, priority=5, ttl_seconds=60)
    lease = (await batch.claim(MOCK, limit=1, owner="engine"))[0]

    assert await laned.heartbeat(lease)
    assert await laned.complete(lease, make_result(batched))

    record = await laned.get(batched.request_id)
    assert record is not None
    assert record.status is QueueStatus.COMPLETED


async def test_a_realtime_lease_is_settled_in_the_realtime_lane(laned, realtime):
    waiting = async_job()
    await laned.enqueue(waiting, priority=5, ttl_seconds=60)
    lease = (await laned.claim(MOCK, limit=1, owner="worker"))[0]

    assert await laned.fail(lease, ERROR, retry_in=None) is QueueStatus.FAILED

    record = await realtime.get(waiting.request_id)
    assert record is not None
    assert record.status is QueueStatus.FAILED


async def test_ids_are_found_in_either_lane(laned):
    waiting, batched = async_job(), batch_job()
    await laned.enqueue(waiting, priority=5, ttl_seconds=60)
    await laned.enqueue(batched, priority=5, ttl_seconds=60)

    assert await laned.position(waiting.request_id) == 1
    assert await laned.position(batched.request_id) == 1
    assert (await laned.cancel(batched.request_id)).status is QueueStatus.CANCELLED
    assert (await laned.cancel(waiting.request_id)).status is QueueStatus.CANCELLED
    with pytest.raises(NotFoundError):
        await laned.cancel(make_job().request_id)
    assert await laned.get(make_job().request_id) is None


async def test_a_batched_request_may_be_cancelled_through_the_laned_queue(laned, batch):
    batched = batch_job()
    await laned.enqueue(batched, priority=5, ttl_seconds=60)
    lease = (await batch.claim(MOCK, limit=1, owner="engine"))[0]

    assert (await laned.cancel(batched.request_id)).status is QueueStatus.CANCELLED
    assert not await laned.complete(lease, make_result(batched))


async def test_stats_sum_both_lanes(laned, batch):
    await laned.enqueue(async_job(), priority=1, ttl_seconds=60)
    await laned.enqueue(batch_job(), priority=1, ttl_seconds=60)
    await laned.enqueue(batch_job(LLMProviderType.OPENAI), priority=7, ttl_seconds=60)
    await laned.enqueue(batch_job(), priority=7, ttl_seconds=60)
    await batch.claim(MOCK, limit=1, owner="engine")

    stats = await laned.stats()

    assert stats.depth == {MOCK: 2, LLMProviderType.OPENAI: 1}
    assert stats.depth_by_priority == {1: 2, 7: 1}  # the claim took the MOCK one of 7
    assert stats.processing == 1
    assert stats.oldest_queued_at is not None


async def test_every_ending_of_either_lane_is_reported_and_announced_once(laned, batch, clock):
    waiting, queued_batch, batched = async_job(), batch_job(), batch_job()
    for job in (waiting, queued_batch, batched):
        await laned.enqueue(job, priority=5, ttl_seconds=5)
    await batch.claim(MOCK, limit=1, owner="engine")  # `queued_batch` is now in a batch
    clock.advance(6)

    report = await laned.reap()

    ended = {waiting.request_id, queued_batch.request_id, batched.request_id}
    assert sorted(r.queue_id for r in report.expired) == sorted(ended)
    assert (await laned.reap()).expired == ()
    taken = await laned.take_unannounced(limit=2, hide_seconds=60)
    taken += await laned.take_unannounced(limit=10, hide_seconds=60)
    assert sorted(r.queue_id for r in taken) == sorted(ended)
    for record in taken:
        await laned.mark_announced(record.queue_id)
    clock.advance(61)
    assert await laned.take_unannounced(limit=10, hide_seconds=60) == []


class UnreachableQueue(InMemoryRequestQueue):
    async def reap(self) -> ReapReport:
        raise QueueUnavailableError("the request queue is unreachable")

    async def take_unannounced(self, *, limit: int, hide_seconds: float) -> list[QueueRecord]:
        raise QueueUnavailableError("the request queue is unreachable")


async def test_a_lane_that_cannot_be_reaped_does_not_lose_the_others_report(realtime, clock):
    laned = LanedRequestQueue(realtime, UnreachableQueue(CONFIG, clock, batch_lane=True))
    waiting = async_job()
    await laned.enqueue(waiting, priority=5, ttl_seconds=5)
    clock.advance(6)

    report = await laned.reap()

    assert [r.queue_id for r in report.expired] == [waiting.request_id]


async def test_an_unreachable_batch_lane_does_not_hold_back_realtime_announcements(realtime, clock):
    laned = LanedRequestQueue(realtime, UnreachableQueue(CONFIG, clock, batch_lane=True))
    waiting = async_job()
    await laned.enqueue(waiting, priority=5, ttl_seconds=5)
    clock.advance(6)
    await laned.reap()

    first = await laned.take_unannounced(limit=10, hide_seconds=60)
    second = await laned.take_unannounced(limit=10, hide_seconds=60)  # the other lane first

    assert [r.queue_id for r in first + second] == [waiting.request_id]


async def test_announcements_raise_when_neither_lane_answers(clock):
    laned = LanedRequestQueue(UnreachableQueue(CONFIG, clock), UnreachableQueue(CONFIG, clock))

    with pytest.raises(QueueUnavailableError):
        await laned.take_unannounced(limit=10, hide_seconds=60)


async def test_a_reap_raises_when_neither_lane_answers(clock):
    laned = LanedRequestQueue(UnreachableQueue(CONFIG, clock), UnreachableQueue(CONFIG, clock))

    with pytest.raises(QueueUnavailableError):
        await laned.reap()


async def test_wait_for_work_is_not_woken_by_batch_work(laned):
    await laned.enqueue(batch_job(), priority=5, ttl_seconds=60)

    await laned.wait_for_work(0.05)  # returns at its timeout: nothing arrived for the worker

    assert await laned.claim(MOCK, limit=1, owner="worker") == []


class CountingQueue(InMemoryRequestQueue):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.marked: list[Any] = []

    async def mark_announced(self, queue_id) -> None:
        self.marked.append(queue_id)
        await super().mark_announced(queue_id)


async def test_an_announcement_is_marked_in_the_lane_it_was_taken_from(clock):
    realtime, batch = CountingQueue(CONFIG, clock), CountingQueue(CONFIG, clock, batch_lane=True)
    laned = LanedRequestQueue(realtime, batch)
    batched = batch_job()
    await laned.enqueue(batched, priority=5, ttl_seconds=60)
    await laned.cancel(batched.request_id)
    [taken] = await laned.take_unannounced(limit=10, hide_seconds=60)

    await laned.mark_announced(taken.queue_id)

    assert (realtime.marked, batch.marked) == ([], [batched.request_id])
    unknown = make_job().request_id
    await laned.mark_announced(unknown)  # not taken here (another replica took it): both
    assert (realtime.marked, batch.marked) == ([unknown], [batched.request_id, unknown])
