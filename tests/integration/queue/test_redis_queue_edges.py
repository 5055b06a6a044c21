"""Redis-only edges of the queue: reap limits, records deleted by hand, same-millisecond order."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from common_core.enums import LLMProviderType, QueueStatus
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.queue import RedisRequestQueue
from services.llm_provider_service.settings import QueueSettings
from tests.factories import make_job
from tests.support.redis_queue import QueueBuilder
from tests.support.redis_server import RedisServer

MOCK = LLMProviderType.MOCK
CONFIG = QueueSettings(
    max_size=10_000,
    max_attempts=3,
    lease_seconds=10.0,
    priority_boost_seconds=1.0,
    result_retention_seconds=600.0,
)


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    await client.aclose()


async def test_claim_never_leases_what_a_limited_reap_could_not_expire(redis: Redis):
    builder = QueueBuilder(redis)
    queue = RedisRequestQueue(
        redis, RedisKeys(builder.prefix), CONFIG, time_offset_ms=builder.time, reap_limit=1
    )
    jobs = [make_job() for _ in range(4)]
    for job in jobs:
        await queue.enqueue(job, priority=5, ttl_seconds=1)
    builder.time.advance(2)

    assert await queue.claim(MOCK, limit=4, owner="w") == []

    report = await queue.reap()
    assert {r.queue_id for r in report.expired} == {j.request_id for j in jobs}
    for job in jobs:
        record = await queue.get(job.request_id)
        assert record is not None
        assert record.status is QueueStatus.EXPIRED


async def test_a_record_deleted_by_hand_does_not_wedge_the_queue(redis: Redis):
    builder = QueueBuilder(redis)
    queue = builder.build(CONFIG)
    lost, kept = make_job(), make_job()
    await queue.enqueue(lost, priority=5, ttl_seconds=60)
    await queue.enqueue(kept, priority=5, ttl_seconds=60)
    await redis.delete(RedisKeys(builder.prefix).request(str(lost.request_id)))

    leases = await queue.claim(MOCK, limit=5, owner="w")

    assert [lease.queue_id for lease in leases] == [kept.request_id]
    builder.time.advance(120)  # the lost id's expiry and the kept one's lease come due
    report = await queue.reap()
    assert report.lease_expiries == 1


async def test_same_millisecond_enqueues_keep_order_across_many_milliseconds(redis: Redis):
    queue = QueueBuilder(redis).build(CONFIG)
    jobs = [make_job() for _ in range(1500)]
    for job in jobs:
        await queue.enqueue(job, priority=5, ttl_seconds=600)
    claimed: list[object] = []
    while batch := await queue.claim(MOCK, limit=500, owner="w"):
        claimed.extend(lease.queue_id for lease in batch)
    assert claimed == [job.request_id for job in jobs]
