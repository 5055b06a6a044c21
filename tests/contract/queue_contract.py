"""The `RequestQueue` contract: one behaviour suite that every queue implementation must pass.

A harness module runs it by importing everything from here and defining three fixtures:

- `queue_factory(config, clock)`: returns a fresh, empty `RequestQueue` (or an awaitable of
  one) built with `config`. `clock` is the harness's own `clock` fixture, passed through.
- `clock`: whatever the factory needs as its time source (a fake clock for the in-memory
  queue; a Redis harness that uses server `TIME` may provide anything).
- `advance(seconds)`: async; moves the queue's notion of time forward by `seconds` without
  waiting for real (for Redis: a test-only offset on server `TIME`).

The tests never read the clock: they only advance it, and leave at least half a second of
margin around every deadline, so an implementation whose time also moves a few milliseconds
for real passes too. Durations are taken from `queue_config`, which a harness may override.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from common_core.api_models import ErrorInfo
from common_core.enums import LLMProviderType, QueueStatus
from common_core.pass_through import PassThrough
from services.llm_provider_service.errors import (
    ConflictError,
    NotFoundError,
    QueueFullError,
    QuotaExceededError,
)
from services.llm_provider_service.models import ComparisonJob, Lease, QueueRecord
from services.llm_provider_service.protocols import RequestQueue
from services.llm_provider_service.settings import QueueSettings
from tests.factories import make_job, make_request, make_result

MOCK = LLMProviderType.MOCK
OPENAI = LLMProviderType.OPENAI
TTL = 3600  # long enough that nothing expires unless a test means it to
MakeQueue = Callable[[QueueSettings], Awaitable[RequestQueue]]
Advance = Callable[[float], Awaitable[None]]
ERROR = ErrorInfo(code="PROVIDER_UNAVAILABLE", message="the vendor answered 503")


@pytest.fixture
def queue_config() -> QueueSettings:
    return QueueSettings(
        max_size=50,
        max_attempts=3,
        lease_seconds=10.0,
        priority_boost_seconds=1.0,
        result_retention_seconds=600.0,
    )


@pytest.fixture
def batch_lane() -> bool:
    """Whether the bound queue is the batch lane's (`batch_lane=True`); its bindings say so.
    The few behaviours that differ (documentation/queue.md, "Batch lane") are tested for
    both."""
    return False


@pytest.fixture
def make_queue(queue_factory: Callable[[QueueSettings, Any], Any], clock: Any) -> MakeQueue:
    async def make(config: QueueSettings) -> RequestQueue:
        made = queue_factory(config, clock)
        queue: RequestQueue = await made if inspect.isawaitable(made) else made
        return queue

    return make


@pytest.fixture
async def queue(make_queue: MakeQueue, queue_config: QueueSettings) -> RequestQueue:
    return await make_queue(queue_config)


async def _enqueue(
    queue: RequestQueue,
    provider: LLMProviderType = MOCK,
    *,
    priority: int = 5,
    ttl: int = TTL,
) -> ComparisonJob:
    job = make_job(provider)
    await queue.enqueue(job, priority=priority, ttl_seconds=ttl)
    return job


async def _claim_one(queue: RequestQueue, provider: LLMProviderType = MOCK) -> Lease:
    leases = await queue.claim(provider, limit=1, owner="worker-1")
    assert len(leases) == 1
    return leases[0]


async def _record(queue: RequestQueue, job: ComparisonJob) -> QueueRecord:
    record = await queue.get(job.request_id)
    assert record is not None
    return record


async def _claim_order(queue: RequestQueue, provider: LLMProviderType = MOCK) -> list[UUID]:
    return [lease.queue_id for lease in await queue.claim(provider, limit=100, owner="w")]


# -- enqueue ---------------------------------------------------------------------------------


async def test_enqueue_stores_a_queued_record(queue: RequestQueue, queue_config: QueueSettings):
    job = make_job(OPENAI)

    record = await queue.enqueue(job, priority=7, ttl_seconds=120)

    assert record.queue_id == job.request_id
    assert record.correlation_id == job.correlation_id
    assert record.provider is OPENAI
    assert record.status is QueueStatus.QUEUED
    assert record.priority == 7
    assert record.attempts == 0
    assert record.max_attempts == queue_config.max_attempts
    assert record.job == job
    assert record.result is None
    assert record.error is None
    assert record.queued_at.utcoffset() == timedelta(0)
    assert record.updated_at == record.queued_at
    assert record.expires_at - record.queued_at == timedelta(seconds=120)
    assert await queue.get(job.request_id) == record


async def test_the_trace_context_travels_with_the_job_to_the_worker(queue: RequestQueue):
    context = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    traced = make_job(trace_context=context)
    untraced = make_job()  # stored as before traces: no trace_context at all
    await queue.enqueue(traced, priority=5, ttl_seconds=TTL)
    await queue.enqueue(untraced, priority=5, ttl_seconds=TTL)

    leases = {lease.queue_id: lease for lease in await queue.claim(MOCK, limit=2, owner="w")}

    assert leases[traced.request_id].job.trace_context == context
    assert leases[untraced.request_id].job.trace_context is None
    record = await queue.get(traced.request_id)
    assert record is not None
    assert record.job == traced


async def test_enqueue_is_idempotent_on_request_id(queue: RequestQueue):
    job = make_job()
    first = await queue.enqueue(job, priority=5, ttl_seconds=TTL)

    again = await queue.enqueue(job, priority=9, ttl_seconds=10)

    assert again == first
    assert (await queue.stats()).total_depth == 1
    assert len(await queue.claim(MOCK, limit=10, owner="w")) == 1


async def test_enqueue_returns_an_ended_record_unchanged(queue: RequestQueue):
    job = await _enqueue(queue)
    lease = await _claim_one(queue)
    assert await queue.complete(lease, make_result(job))
    done = await _record(queue, job)

    again = await queue.enqueue(job, priority=5, ttl_seconds=TTL)

    assert again == done
    assert again.status is QueueStatus.COMPLETED
    assert await queue.claim(MOCK, limit=1, owner="w") == []


async def test_enqueue_refuses_when_full(
    make_queue: MakeQueue, queue_config: QueueSettings, batch_lane: bool
):
    queue = await make_queue(queue_config.model_copy(update={"max_size": 2}))
    first = await _enqueue(queue)
    await _enqueue(queue, OPENAI)

    with pytest.raises(QueueFullError) as raised:
        await _enqueue(queue)

    assert "2" in raised.value.message
    assert raised.value.retry_after is not None
    assert raised.value.retry_after > 0
    assert (await queue.enqueue(first, priority=5, ttl_seconds=TTL)).queue_id == first.request_id
    await _claim_one(queue)
    if batch_lane:  # a request in a provider batch still takes a place until it ends
        with pytest.raises(QueueFullError):
            await _enqueue(queue)
        return
    await _enqueue(queue)  # a request being processed no longer takes a place
    assert (await queue.stats()).total_depth == 2


async def test_a_caller_may_have_at_most_its_limit_waiting_or_running(queue: RequestQueue):
    first, second, third = (make_job(caller="cj") for _ in range(3))
    for job in (first, second):
        await queue.enqueue(job, priority=5, ttl_seconds=TTL, caller_limit=2)

    with pytest.raises(QuotaExceededError) as refused:
        await queue.enqueue(third, priority=5, ttl_seconds=TTL, caller_limit=2)

    assert refused.value.http_status == 429
    assert refused.value.details == {"quota": "max_queued", "limit": 2, "caller": "cj"}
    assert refused.value.retry_after is not None
    assert refused.value.retry_after > 0
    assert await queue.get(third.request_id) is None
    # Its own retry is not refused; other callers and anonymous requests are not counted.
    assert (await queue.enqueue(first, priority=5, ttl_seconds=TTL, caller_limit=2)).queue_id
    await queue.enqueue(make_job(caller="feedback"), priority=5, ttl_seconds=TTL, caller_limit=2)
    await queue.enqueue(make_job(), priority=5, ttl_seconds=TTL, caller_limit=2)
    await queue.enqueue(third, priority=5, ttl_seconds=TTL)  # no limit given: none applies
    assert (await _record(queue, third)).job.caller == "cj"


async def test_a_callers_place_is_freed_when_its_request_ends(queue: RequestQueue):
    first, second, third, fourth = (make_job(caller="cj") for _ in range(4))
    for job in (first, second):
        await queue.enqueue(job, priority=5, ttl_seconds=TTL, caller_limit=2)
    lease = await _claim_one(queue)

    with pytest.raises(QuotaExceededError):  # a request being processed still counts
        await queue.enqueue(third, priority=5, ttl_seconds=TTL, caller_limit=2)
    assert await queue.complete(lease, make_result(lease.job))
    await queue.enqueue(third, priority=5, ttl_seconds=TTL, caller_limit=2)
    with pytest.raises(QuotaExceededError):
        await queue.enqueue(fourth, priority=5, ttl_seconds=TTL, caller_limit=2)
    await queue.cancel(third.request_id)
    await queue.enqueue(fourth, priority=5, ttl_seconds=TTL, caller_limit=2)


async def test_a_callers_expired_request_frees_its_place(queue: RequestQueue, advance: Advance):
    short = make_job(caller="cj")
    await queue.enqueue(short, priority=5, ttl_seconds=2, caller_limit=1)
    await advance(3)
    await queue.reap()

    await queue.enqueue(make_job(caller="cj"), priority=5, ttl_seconds=TTL, caller_limit=1)

    assert (await _record(queue, short)).status is QueueStatus.EXPIRED


async def test_enqueue_with_a_delay_waits_then_keeps_its_place(
    queue: RequestQueue, advance: Advance
):
    delayed = make_job()
    record = await queue.enqueue(delayed, priority=5, ttl_seconds=TTL, delay_seconds=5)
    first = await _enqueue(queue)
    second = await _enqueue(queue)

    assert record.status is QueueStatus.QUEUED
    assert await queue.position(delayed.request_id) == 1
    assert await queue.position(second.request_id) == 2  # only claimable requests count ahead
    assert (await queue.stats()).total_depth == 3
    assert (await _claim_one(queue)).queue_id == first.request_id
    await advance(4.5)
    assert await queue.position(delayed.request_id) == 1
    await advance(1)
    assert await _claim_order(queue) == [delayed.request_id, second.request_id]


async def test_enqueue_delay_reaching_past_the_expiry_is_ignored(queue: RequestQueue):
    job = make_job()

    await queue.enqueue(job, priority=5, ttl_seconds=5, delay_seconds=10)

    assert (await _claim_one(queue)).queue_id == job.request_id


# -- claim order -----------------------------------------------------------------------------


async def test_claim_takes_higher_priority_first_then_oldest(queue: RequestQueue, advance: Advance):
    jobs = []
    for priority in (5, 5, 9, 0, 9):
        jobs.append(await _enqueue(queue, priority=priority))
        await advance(0.01)
    a5, b5, a9, a0, b9 = (job.request_id for job in jobs)

    assert await _claim_order(queue) == [a9, b9, a5, b5, a0]


async def test_fifo_within_a_priority_holds_in_the_same_millisecond(queue: RequestQueue):
    # Redis note: members with equal sorted-set scores sort by member, not arrival.
    jobs = [await _enqueue(queue) for _ in range(20)]

    assert await _claim_order(queue) == [job.request_id for job in jobs]


async def test_low_priority_waits_at_most_the_boost_difference(
    queue: RequestQueue, queue_config: QueueSettings, advance: Advance
):
    credit = 10 * queue_config.priority_boost_seconds  # priorities 0 and 10
    old_low = await _enqueue(queue, priority=0)
    await advance(credit + 0.5)
    new_high = await _enqueue(queue, priority=10)
    low = await _enqueue(queue, priority=0)
    await advance(credit - 0.5)
    high = await _enqueue(queue, priority=10)

    order = await _claim_order(queue)

    assert order == [old_low.request_id, new_high.request_id, high.request_id, low.request_id]


async def test_claim_respects_provider_and_limit(queue: RequestQueue):
    mock_jobs = [await _enqueue(queue, MOCK) for _ in range(3)]
    openai_jobs = [await _enqueue(queue, OPENAI) for _ in range(2)]

    assert await queue.claim(MOCK, limit=0, owner="w") == []
    first = await queue.claim(MOCK, limit=2, owner="w")
    other = await queue.claim(OPENAI, limit=10, owner="w")
    rest = await queue.claim(MOCK, limit=10, owner="w")

    assert [lease.queue_id for lease in first + rest] == [job.request_id for job in mock_jobs]
    assert [lease.queue_id for lease in other] == [job.request_id for job in openai_jobs]
    assert await queue.claim(MOCK, limit=10, owner="w") == []
    assert await queue.claim(LLMProviderType.ANTHROPIC, limit=10, owner="w") == []


async def test_claim_leases_the_request(queue: RequestQueue, advance: Advance):
    job = await _enqueue(queue)
    queued = await _record(queue, job)
    await advance(1)

    lease = await _claim_one(queue)

    record = await _record(queue, job)
    assert lease.queue_id == job.request_id
    assert lease.owner == "worker-1"
    assert lease.attempt == 1
    assert lease.job == job
    assert lease.queued_at == queued.queued_at
    assert record.status is QueueStatus.PROCESSING
    assert record.attempts == 1
    assert record.updated_at > queued.updated_at
    assert await queue.position(job.request_id) is None


async def test_every_claim_gets_a_greater_fence_token(queue: RequestQueue, advance: Advance):
    await _enqueue(queue)
    await _enqueue(queue, OPENAI)
    first = await _claim_one(queue)
    second = await _claim_one(queue, OPENAI)
    await advance(15)  # both leases expire and are claimed again

    again = await _claim_one(queue)

    assert second.token > first.token
    assert again.token > second.token
    assert again.queue_id == first.queue_id
    assert again.attempt == 2


# -- leases ----------------------------------------------------------------------------------


async def test_heartbeat_keeps_a_lease_across_several_lease_periods(
    queue: RequestQueue, queue_config: QueueSettings, advance: Advance
):
    job = await _enqueue(queue)
    lease = await _claim_one(queue)

    for _ in range(6):  # three lease periods in all
        await advance(queue_config.lease_seconds / 2)
        assert await queue.heartbeat(lease)
        report = await queue.reap()
        assert report.lease_expiries == 0
        assert await queue.claim(MOCK, limit=1, owner="w2") == []

    assert (await _record(queue, job)).status is QueueStatus.PROCESSING
    assert await queue.complete(lease, make_result(job))


async def test_expired_lease_is_requeued_in_its_place(
    queue: RequestQueue, queue_config: QueueSettings, advance: Advance
):
    first = await _enqueue(queue)
    second = await _enqueue(queue)
    await _claim_one(queue)
    await advance(queue_config.lease_seconds - 0.5)
    assert (await queue.reap()).lease_expiries == 0
    await advance(1)

    report = await queue.reap()

    record = await _record(queue, first)
    assert report.lease_expiries == 1
    assert record.status is QueueStatus.QUEUED
    assert record.attempts == 1
    assert await queue.position(first.request_id) == 1
    leases = await queue.claim(MOCK, limit=2, owner="w2")
    assert [lease.queue_id for lease in leases] == [first.request_id, second.request_id]
    assert leases[0].attempt == 2


async def test_stale_lease_changes_nothing_after_a_reclaim(
    queue: RequestQueue, queue_config: QueueSettings, advance: Advance
):
    job = await _enqueue(queue)
    stale = await _claim_one(queue)
    await advance(queue_config.lease_seconds + 1)
    current = await _claim_one(queue)
    before = await _record(queue, job)

    assert not await queue.heartbeat(stale)
    assert not await queue.complete(stale, make_result(job))
    assert await queue.fail(stale, ERROR, retry_in=None) is None
    assert await queue.fail(stale, ERROR, retry_in=1) is None
    assert not await queue.release(stale)

    assert await _record(queue, job) == before
    assert await queue.complete(current, make_result(job))
    assert (await _record(queue, job)).status is QueueStatus.COMPLETED


async def test_lease_expiring_on_every_attempt_ends_failed(
    queue: RequestQueue, queue_config: QueueSettings, advance: Advance
):
    job = await _enqueue(queue)
    other = await _enqueue(queue, OPENAI)
    for attempt in range(1, queue_config.max_attempts + 1):
        lease = await _claim_one(queue)
        assert lease.attempt == attempt
        await advance(queue_config.lease_seconds + 1)

    report = await queue.reap()

    record = await _record(queue, job)
    assert [failed.queue_id for failed in report.failed] == [job.request_id]
    assert report.failed[0].status is QueueStatus.FAILED
    assert report.lease_expiries == queue_config.max_attempts  # those claim found included
    assert record.status is QueueStatus.FAILED
    assert record.attempts == queue_config.max_attempts
    assert record.error is not None
    assert record.error.code == "LEASE_EXPIRED"
    assert await queue.claim(MOCK, limit=1, owner="w") == []
    assert (await _claim_one(queue, OPENAI)).queue_id == other.request_id  # nothing blocked


async def test_expiry_outranks_spent_attempts_when_a_lease_lapses(
    make_queue: MakeQueue, queue_config: QueueSettings, advance: Advance
):
    queue = await make_queue(queue_config.model_copy(update={"max_attempts": 1}))
    job = await _enqueue(queue, ttl=5)
    await _claim_one(queue)
    await advance(queue_config.lease_seconds + 1)

    report = await queue.reap()

    assert [expired.queue_id for expired in report.expired] == [job.request_id]
    assert report.failed == ()
    assert (await _record(queue, job)).status is QueueStatus.EXPIRED


async def test_lease_expiring_after_the_ttl_ends_expired(
    queue: RequestQueue, queue_config: QueueSettings, advance: Advance
):
    job = await _enqueue(queue, ttl=5)
    await _claim_one(queue)
    await advance(queue_config.lease_seconds + 1)

    report = await queue.reap()

    record = await _record(queue, job)
    assert [expired.queue_id for expired in report.expired] == [job.request_id]
    assert report.lease_expiries == 1
    assert record.status is QueueStatus.EXPIRED
    assert record.error is not None
    assert record.error.code == "REQUEST_EXPIRED"


async def test_transitions_found_by_claim_are_reported_by_the_next_reap(
    queue: RequestQueue, advance: Advance
):
    # Otherwise a request expired by claim's own reap would never be announced.
    job = await _enqueue(queue, ttl=5)
    await advance(6)

    assert await queue.claim(MOCK, limit=1, owner="w") == []

    report = await queue.reap()
    assert [expired.queue_id for expired in report.expired] == [job.request_id]
    assert (await queue.reap()).expired == ()


# -- complete, fail, release -----------------------------------------------------------------


async def test_complete_stores_the_result(queue: RequestQueue):
    job = await _enqueue(queue)
    lease = await _claim_one(queue)
    result = make_result(job)

    assert await queue.complete(lease, result)

    record = await _record(queue, job)
    assert record.status is QueueStatus.COMPLETED
    assert record.result == result
    assert not await queue.complete(lease, make_result(job, confidence=1))
    assert (await _record(queue, job)).result == result


async def test_fail_without_retry_ends_failed(queue: RequestQueue):
    job = await _enqueue(queue)
    lease = await _claim_one(queue)

    assert await queue.fail(lease, ERROR, retry_in=None) is QueueStatus.FAILED

    record = await _record(queue, job)
    assert record.status is QueueStatus.FAILED
    assert record.error == ERROR
    assert record.attempts == 1


async def test_fail_with_retry_waits_then_is_claimable_in_its_place(
    queue: RequestQueue, advance: Advance
):
    job = await _enqueue(queue)
    later = await _enqueue(queue)
    lease = await _claim_one(queue)

    assert await queue.fail(lease, ERROR, retry_in=5) is QueueStatus.QUEUED

    record = await _record(queue, job)
    assert record.status is QueueStatus.QUEUED
    assert record.attempts == 1
    assert await queue.position(job.request_id) == 1
    await advance(4.5)
    assert (await queue.reap()).promoted == 0
    assert (await _claim_one(queue)).queue_id == later.request_id  # the only due request
    await advance(1)
    assert (await queue.reap()).promoted == 1
    retry = await _claim_one(queue)
    assert retry.queue_id == job.request_id
    assert retry.attempt == 2


async def test_retry_goes_before_later_requests(queue: RequestQueue, advance: Advance):
    job = await _enqueue(queue)
    lease = await _claim_one(queue)
    await queue.fail(lease, ERROR, retry_in=1)
    later = await _enqueue(queue)
    await advance(1.5)

    assert await _claim_order(queue) == [job.request_id, later.request_id]


async def test_fail_ends_failed_when_attempts_are_spent(
    queue: RequestQueue, queue_config: QueueSettings, advance: Advance
):
    job = await _enqueue(queue)
    statuses = []
    for _ in range(queue_config.max_attempts):
        lease = await _claim_one(queue)
        statuses.append(await queue.fail(lease, ERROR, retry_in=1))
        await advance(1.5)

    expected = [QueueStatus.QUEUED] * (queue_config.max_attempts - 1) + [QueueStatus.FAILED]
    assert statuses == expected
    record = await _record(queue, job)
    assert record.status is QueueStatus.FAILED
    assert record.attempts == queue_config.max_attempts
    assert record.error == ERROR


async def test_fail_never_schedules_a_retry_past_expiry(queue: RequestQueue):
    job = await _enqueue(queue, ttl=10)
    lease = await _claim_one(queue)

    assert await queue.fail(lease, ERROR, retry_in=20) is QueueStatus.FAILED

    record = await _record(queue, job)
    assert record.status is QueueStatus.FAILED
    assert record.error == ERROR


async def test_release_gives_the_request_back_without_spending_an_attempt(
    queue: RequestQueue, advance: Advance
):
    job = await _enqueue(queue)
    later = await _enqueue(queue)
    lease = await _claim_one(queue)
    await advance(1)

    assert await queue.release(lease)

    record = await _record(queue, job)
    assert record.status is QueueStatus.QUEUED
    assert record.attempts == 0
    assert await queue.position(job.request_id) == 1
    assert not await queue.release(lease)
    leases = await queue.claim(MOCK, limit=2, owner="w")
    assert [each.queue_id for each in leases] == [job.request_id, later.request_id]
    assert leases[0].attempt == 1


# -- expiry ----------------------------------------------------------------------------------


async def test_queued_request_expires_after_its_ttl(queue: RequestQueue, advance: Advance):
    job = await _enqueue(queue, ttl=5)
    await advance(4.5)
    assert (await queue.reap()).expired == ()
    await advance(1)

    report = await queue.reap()

    record = await _record(queue, job)
    assert [expired.queue_id for expired in report.expired] == [job.request_id]
    assert record.status is QueueStatus.EXPIRED
    assert record.error is not None
    assert record.error.code == "REQUEST_EXPIRED"
    assert await queue.position(job.request_id) is None
    assert await queue.claim(MOCK, limit=1, owner="w") == []
    assert (await queue.stats()).total_depth == 0


async def test_claim_never_leases_an_expired_request(queue: RequestQueue, advance: Advance):
    job = await _enqueue(queue, ttl=5)
    await advance(5.5)

    assert await queue.claim(MOCK, limit=1, owner="w") == []
    assert (await _record(queue, job)).status is QueueStatus.EXPIRED


async def test_request_waiting_for_a_retry_expires(queue: RequestQueue, advance: Advance):
    job = await _enqueue(queue, ttl=10)
    lease = await _claim_one(queue)
    assert await queue.fail(lease, ERROR, retry_in=8) is QueueStatus.QUEUED
    await advance(10.5)

    report = await queue.reap()

    assert [expired.queue_id for expired in report.expired] == [job.request_id]
    assert report.promoted == 0
    assert (await _record(queue, job)).status is QueueStatus.EXPIRED
    assert await queue.claim(MOCK, limit=1, owner="w") == []


# -- cancel ----------------------------------------------------------------------------------


async def test_cancel_a_queued_request(queue: RequestQueue):
    job = await _enqueue(queue)

    cancelled = await queue.cancel(job.request_id)

    assert cancelled.status is QueueStatus.CANCELLED
    assert await queue.get(job.request_id) == cancelled
    assert await queue.position(job.request_id) is None
    assert await queue.claim(MOCK, limit=1, owner="w") == []
    with pytest.raises(ConflictError):
        await queue.cancel(job.request_id)


async def test_cancel_a_request_waiting_for_a_retry(queue: RequestQueue, advance: Advance):
    job = await _enqueue(queue)
    lease = await _claim_one(queue)
    await queue.fail(lease, ERROR, retry_in=1)

    assert (await queue.cancel(job.request_id)).status is QueueStatus.CANCELLED
    await advance(2)
    assert await queue.claim(MOCK, limit=1, owner="w") == []
    assert (await queue.stats()).total_depth == 0


async def test_cancel_a_processing_request_conflicts(queue: RequestQueue, batch_lane: bool):
    job = await _enqueue(queue)
    lease = await _claim_one(queue)
    if batch_lane:
        return  # the batch lane cancels it: test_the_batch_lane_cancels_a_processing_request

    with pytest.raises(ConflictError, match="processing"):
        await queue.cancel(job.request_id)

    assert (await _record(queue, job)).status is QueueStatus.PROCESSING
    assert await queue.heartbeat(lease)


async def test_the_batch_lane_cancels_a_processing_request(queue: RequestQueue, batch_lane: bool):
    job = await _enqueue(queue)
    lease = await _claim_one(queue)
    if not batch_lane:
        return  # the realtime lane refuses: test_cancel_a_processing_request_conflicts

    cancelled = await queue.cancel(job.request_id)

    assert cancelled.status is QueueStatus.CANCELLED
    assert not await queue.heartbeat(lease)  # its lease is stale: a late result is dropped
    assert not await queue.complete(lease, make_result(job))
    assert await queue.fail(lease, ERROR, retry_in=None) is None
    assert not await queue.release(lease)
    record = await _record(queue, job)
    assert record.status is QueueStatus.CANCELLED
    assert record.result is None
    assert await _taken(queue) == [job.request_id]  # announced once, like any ending
    assert (await queue.stats()).processing == 0
    with pytest.raises(ConflictError, match="cancelled"):
        await queue.cancel(job.request_id)


async def test_a_processing_request_expires_at_its_ttl_on_the_batch_lane_only(
    queue: RequestQueue, queue_config: QueueSettings, advance: Advance, batch_lane: bool
):
    job = await _enqueue(queue, ttl=5)
    lease = await _claim_one(queue)
    assert lease.expires_at == (await _record(queue, job)).expires_at
    await queue.heartbeat(lease)
    await advance(6)  # past the TTL, well within the lease
    assert queue_config.lease_seconds > 6.5

    report = await queue.reap()

    record = await _record(queue, job)
    if not batch_lane:  # a realtime call in flight is left to finish
        assert report.expired == ()
        assert record.status is QueueStatus.PROCESSING
        assert await queue.complete(lease, make_result(job))
        return
    assert [expired.queue_id for expired in report.expired] == [job.request_id]
    assert record.status is QueueStatus.EXPIRED
    assert record.error is not None
    assert record.error.code == "REQUEST_EXPIRED"
    assert not await queue.complete(lease, make_result(job))  # a result after the TTL: dropped
    assert not await queue.heartbeat(lease)
    assert (await _record(queue, job)).result is None
    assert (await queue.reap()).expired == ()  # reported once
    assert await _taken(queue) == [job.request_id]


async def test_cancel_an_unknown_request_is_not_found(queue: RequestQueue):
    with pytest.raises(NotFoundError):
        await queue.cancel(make_job().request_id)


# -- reading ---------------------------------------------------------------------------------


async def test_get_an_unknown_request_is_none(queue: RequestQueue):
    assert await queue.get(make_job().request_id) is None
    assert await queue.position(make_job().request_id) is None


async def test_get_returns_a_copy(queue: RequestQueue):
    job = await _enqueue(queue)
    record = await _record(queue, job)

    record.status = QueueStatus.CANCELLED
    record.attempts = 99

    assert await _record(queue, job) != record
    assert (await _record(queue, job)).status is QueueStatus.QUEUED


async def test_position_follows_claim_order_per_provider(queue: RequestQueue, advance: Advance):
    first = await _enqueue(queue)
    second = await _enqueue(queue)
    other = await _enqueue(queue, OPENAI)
    await advance(0.5)
    urgent = await _enqueue(queue, priority=10)

    assert await queue.position(urgent.request_id) == 1
    assert await queue.position(first.request_id) == 2
    assert await queue.position(second.request_id) == 3
    assert await queue.position(other.request_id) == 1
    await queue.claim(MOCK, limit=2, owner="w")
    assert await queue.position(urgent.request_id) is None
    assert await queue.position(second.request_id) == 1


async def test_stats_count_depths_and_the_oldest_request(queue: RequestQueue, advance: Advance):
    empty = await queue.stats()
    assert empty.total_depth == 0
    assert empty.processing == 0
    assert empty.oldest_queued_at is None
    oldest = await _enqueue(queue, priority=1)
    await advance(1)
    await _enqueue(queue, priority=5)
    await _enqueue(queue, priority=5)
    await _enqueue(queue, OPENAI, priority=5)
    waiting = await _enqueue(queue, OPENAI, priority=9)
    lease = await _claim_one(queue, OPENAI)
    await queue.fail(lease, ERROR, retry_in=60)  # waiting for a retry still counts as queued
    await _claim_one(queue, OPENAI)

    stats = await queue.stats()

    assert lease.queue_id == waiting.request_id
    assert stats.depth.get(MOCK, 0) == 3
    assert stats.depth.get(OPENAI, 0) == 1
    assert stats.depth.get(LLMProviderType.ANTHROPIC, 0) == 0
    assert stats.total_depth == 4
    assert {p: n for p, n in stats.depth_by_priority.items() if n} == {1: 1, 5: 2, 9: 1}
    assert stats.processing == 1
    assert stats.oldest_queued_at == (await _record(queue, oldest)).queued_at


# -- ended requests --------------------------------------------------------------------------


async def _end_as(queue: RequestQueue, advance: Advance, status: QueueStatus) -> ComparisonJob:
    job = await _enqueue(queue, ttl=5)
    if status is QueueStatus.CANCELLED:
        await queue.cancel(job.request_id)
    elif status is QueueStatus.EXPIRED:
        await advance(6)
        await queue.reap()
    else:
        lease = await _claim_one(queue)
        if status is QueueStatus.COMPLETED:
            await queue.complete(lease, make_result(job))
        else:
            await queue.fail(lease, ERROR, retry_in=None)
    return job


@pytest.mark.parametrize(
    "status",
    [QueueStatus.COMPLETED, QueueStatus.FAILED, QueueStatus.EXPIRED, QueueStatus.CANCELLED],
)
async def test_ended_requests_never_change(
    queue: RequestQueue, queue_config: QueueSettings, advance: Advance, status: QueueStatus
):
    job = await _end_as(queue, advance, status)
    ended = await _record(queue, job)
    assert ended.status is status

    await queue.enqueue(job, priority=10, ttl_seconds=TTL)
    with pytest.raises(ConflictError):
        await queue.cancel(job.request_id)
    assert await queue.claim(MOCK, limit=10, owner="w") == []
    await advance(queue_config.lease_seconds + 10)
    await queue.reap()
    assert await queue.claim(MOCK, limit=10, owner="w") == []

    assert await _record(queue, job) == ended


async def test_ended_requests_are_dropped_after_retention(
    queue: RequestQueue, queue_config: QueueSettings, advance: Advance
):
    job = await _enqueue(queue)
    lease = await _claim_one(queue)
    await queue.complete(lease, make_result(job))
    await queue.mark_announced(job.request_id)
    long_queued = await _enqueue(queue, ttl=int(queue_config.result_retention_seconds) * 2)
    await advance(queue_config.result_retention_seconds - 1)
    await queue.reap()
    assert (await _record(queue, job)).status is QueueStatus.COMPLETED
    await advance(2)

    await queue.reap()

    assert await queue.get(job.request_id) is None
    assert (await _record(queue, long_queued)).status is QueueStatus.QUEUED


# -- announcing results ----------------------------------------------------------------------


async def _taken(queue: RequestQueue, hide: float = 60.0) -> list[UUID]:
    return [r.queue_id for r in await queue.take_unannounced(limit=100, hide_seconds=hide)]


@pytest.mark.parametrize("ending", ["complete", "fail", "cancel", "expire", "lease_spent"])
async def test_every_ending_owes_an_announcement(
    queue: RequestQueue, queue_config: QueueSettings, advance: Advance, ending: str
):
    job = await _enqueue(queue, ttl=30 if ending == "expire" else TTL)
    assert await _taken(queue) == []
    if ending == "complete":
        await queue.complete(await _claim_one(queue), make_result(job))
    elif ending == "fail":
        await queue.fail(await _claim_one(queue), ERROR, retry_in=None)
    elif ending == "cancel":
        await queue.cancel(job.request_id)
    elif ending == "expire":
        await advance(31)
        await queue.reap()
    else:
        for _ in range(queue_config.max_attempts):
            await _claim_one(queue)
            await advance(queue_config.lease_seconds + 1)
            await queue.reap()

    [record] = await queue.take_unannounced(limit=10, hide_seconds=60)

    assert record.queue_id == job.request_id
    assert record.status.is_terminal
    assert record.job == job
    assert (record.result is not None) == (ending == "complete")


async def test_waiting_retrying_and_processing_requests_owe_nothing(queue: RequestQueue):
    await _enqueue(queue)
    retried = await _enqueue(queue)
    await _enqueue(queue)
    first = await _claim_one(queue)
    await queue.fail(first, ERROR, retry_in=30)
    await _claim_one(queue)
    assert retried  # one waits out its backoff, one is processing, one is queued

    assert await _taken(queue) == []


async def test_a_taken_announcement_is_hidden_until_marked_or_its_time_is_up(
    queue: RequestQueue, advance: Advance
):
    done, other = await _enqueue(queue), await _enqueue(queue)
    await queue.complete(await _claim_one(queue), make_result(done))
    await queue.cancel(other.request_id)

    assert set(await _taken(queue, hide=10)) == {done.request_id, other.request_id}
    assert await _taken(queue, hide=10) == []  # a second relay gets nothing meanwhile
    await queue.mark_announced(done.request_id)
    await advance(11)

    assert await _taken(queue) == [other.request_id]  # its relay died before marking it
    await queue.mark_announced(other.request_id)
    await advance(61)
    assert await _taken(queue) == []


async def test_an_unannounced_result_outlives_its_retention(
    queue: RequestQueue, queue_config: QueueSettings, advance: Advance
):
    job = await _enqueue(queue)
    await queue.complete(await _claim_one(queue), make_result(job))
    await advance(queue_config.result_retention_seconds + 1)
    await queue.reap()
    assert (await _record(queue, job)).status is QueueStatus.COMPLETED  # still owed

    await queue.mark_announced(job.request_id)
    await advance(queue_config.result_retention_seconds + 1)
    await queue.reap()

    assert await queue.get(job.request_id) is None


# -- bounded memory for ended records --------------------------------------------------------


async def _end_announced(queue: RequestQueue, **result_fields: Any) -> ComparisonJob:
    """One request completed and its result announced: a record the bounds may trim."""
    job = await _enqueue(queue)
    await queue.complete(await _claim_one(queue), make_result(job, **result_fields))
    await queue.mark_announced(job.request_id)
    return job


async def test_ended_records_beyond_the_count_are_trimmed_oldest_first(
    make_queue: MakeQueue, queue_config: QueueSettings
):
    queue = await make_queue(queue_config.model_copy(update={"result_max_count": 3}))

    jobs = [await _end_announced(queue) for _ in range(5)]

    assert [await queue.get(job.request_id) for job in jobs[:2]] == [None, None]
    for job in jobs[2:]:
        assert (await _record(queue, job)).status is QueueStatus.COMPLETED


async def test_ended_records_beyond_the_byte_budget_are_trimmed_oldest_first(
    make_queue: MakeQueue, queue_config: QueueSettings
):
    # Each result carries 20 000 characters, so two records fit in 50 000 bytes, three not.
    queue = await make_queue(queue_config.model_copy(update={"result_max_bytes": 50_000}))
    bulky = {"metadata": {"notes": "x" * 20_000}}

    jobs = [await _end_announced(queue, **bulky) for _ in range(5)]

    assert [await queue.get(job.request_id) for job in jobs[:3]] == [None, None, None]
    for job in jobs[3:]:
        record = await _record(queue, job)
        assert record.result is not None
        assert record.result.metadata == bulky["metadata"]


async def test_waiting_retrying_and_processing_records_are_never_trimmed(
    make_queue: MakeQueue, queue_config: QueueSettings
):
    queue = await make_queue(
        queue_config.model_copy(update={"result_max_count": 1, "result_max_bytes": 1})
    )
    retrying = await _enqueue(queue, OPENAI)
    await queue.fail(await _claim_one(queue, OPENAI), ERROR, retry_in=30)
    processing = await _enqueue(queue, OPENAI)
    await _claim_one(queue, OPENAI)
    waiting = [await _enqueue(queue, OPENAI) for _ in range(3)]

    ended = [await _end_announced(queue) for _ in range(3)]  # MOCK's: over both bounds

    assert (await _record(queue, retrying)).status is QueueStatus.QUEUED
    assert (await _record(queue, processing)).status is QueueStatus.PROCESSING
    for job in waiting:
        assert (await _record(queue, job)).status is QueueStatus.QUEUED
    assert [await queue.get(job.request_id) for job in ended] == [None, None, None]
    assert (await queue.stats()).total_depth == 4


async def test_a_result_not_yet_announced_is_never_trimmed(
    make_queue: MakeQueue, queue_config: QueueSettings
):
    queue = await make_queue(queue_config.model_copy(update={"result_max_count": 1}))
    jobs = [await _enqueue(queue) for _ in range(3)]
    for job in jobs:
        await queue.complete(await _claim_one(queue), make_result(job))

    for job in jobs:  # over the count, but every result is still owed to the outbox
        assert (await _record(queue, job)).status is QueueStatus.COMPLETED
    assert {r.queue_id for r in await queue.take_unannounced(limit=10, hide_seconds=60)} == {
        job.request_id for job in jobs
    }

    await queue.mark_announced(jobs[0].request_id)
    await queue.mark_announced(jobs[1].request_id)

    assert await queue.get(jobs[0].request_id) is None
    for job in jobs[1:]:
        assert (await _record(queue, job)).status is QueueStatus.COMPLETED


async def test_an_announced_record_keeps_no_copy_of_the_essays(queue: RequestQueue):
    essay = "An essay long enough to matter. " * 200
    job = make_job(
        request=make_request(
            user_prompt=f"Compare these. {essay}", essay_a=essay, essay_b=essay[::-1]
        ),
        caller="cj-assessment",
    )
    await queue.enqueue(job, priority=5, ttl_seconds=TTL)
    result = make_result(job)
    await queue.complete(await _claim_one(queue), result)
    [owed] = await queue.take_unannounced(limit=10, hide_seconds=60)
    assert owed.job == job  # the relay builds the result event from the whole request

    await queue.mark_announced(job.request_id)

    record = await _record(queue, job)
    assert record.status is QueueStatus.COMPLETED
    assert record.result == result
    assert record.job.request_id == job.request_id
    assert record.job.correlation_id == job.correlation_id
    assert record.job.caller == "cj-assessment"
    assert record.job.provider is job.provider
    assert record.job.request.essay_a is None
    assert record.job.request.essay_b is None
    assert essay not in record.job.model_dump_json()


async def test_an_announced_record_keeps_the_pass_through_fields_in_its_result_only(
    queue: RequestQueue,
):
    job = make_job(request=make_request(metadata={"essay_pair": "e1-e2", "notes": "x" * 5_000}))
    await queue.enqueue(job, priority=5, ttl_seconds=TTL)
    result = make_result(job, **dict(job.request.passed_through()))  # as result_of builds it
    await queue.complete(await _claim_one(queue), result)

    await queue.mark_announced(job.request_id)

    record = await _record(queue, job)
    assert record.result is not None
    for name, field in PassThrough.model_fields.items():  # every field, present and future
        sent = getattr(job.request, name)
        assert sent != field.get_default(call_default_factory=True), name  # the test sends it
        assert getattr(record.result, name) == sent, name
        assert getattr(record.job.request, name) == field.get_default(call_default_factory=True)


# -- waiting for work ------------------------------------------------------------------------


async def test_wait_for_work_times_out_when_nothing_arrives(queue: RequestQueue):
    started = time.monotonic()

    await queue.wait_for_work(0.2)

    assert 0.15 <= time.monotonic() - started < 5


@pytest.mark.parametrize("how", ["enqueue", "release"])
async def test_wait_for_work_wakes_when_work_arrives(queue: RequestQueue, how: str):
    if how == "release":
        await _enqueue(queue)
        lease = await _claim_one(queue)
        await queue.wait_for_work(0.01)  # consume the enqueue's wake-up, if it left one
    started = time.monotonic()
    waiter = asyncio.create_task(queue.wait_for_work(30))
    await asyncio.sleep(0.05)
    assert not waiter.done()

    if how == "release":
        await queue.release(lease)
    else:
        await _enqueue(queue)

    await asyncio.wait_for(waiter, timeout=5)
    assert time.monotonic() - started < 5
