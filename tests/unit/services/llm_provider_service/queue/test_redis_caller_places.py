"""A caller's places in the Redis queue stay exact when a request ends without freeing its
place: ended by the previous version (which kept no per-caller set) or deleted by hand."""

from __future__ import annotations

from collections.abc import AsyncIterator

import fakeredis
import pytest
from redis.asyncio import Redis

from services.llm_provider_service.errors import QuotaExceededError
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.queue import RedisRequestQueue
from services.llm_provider_service.settings import QueueSettings
from tests.factories import make_job

CONFIG = QueueSettings(
    max_size=100,
    max_attempts=3,
    lease_seconds=10.0,
    priority_boost_seconds=1.0,
    result_retention_seconds=600.0,
)


@pytest.fixture
async def redis_client() -> AsyncIterator[Redis]:
    client = fakeredis.FakeAsyncRedis(decode_responses=True)
    yield client
    await client.aclose()


@pytest.mark.parametrize("ended_by", ["previous_version", "deleted_by_hand"])
async def test_a_place_not_freed_is_found_free_at_the_limit(redis_client: Redis, ended_by: str):
    keys = RedisKeys("places")
    queue = RedisRequestQueue(redis_client, keys, CONFIG)
    first = make_job(caller="cj")
    await queue.enqueue(first, priority=5, ttl_seconds=600, caller_limit=1)
    with pytest.raises(QuotaExceededError):
        await queue.enqueue(make_job(caller="cj"), priority=5, ttl_seconds=600, caller_limit=1)
    record_key = keys.request(str(first.request_id))
    if ended_by == "previous_version":  # its finish wrote the status and nothing else of ours
        await redis_client.hset(record_key, "status", "completed")
    else:
        await redis_client.delete(record_key)

    await queue.enqueue(make_job(caller="cj"), priority=5, ttl_seconds=600, caller_limit=1)

    assert await redis_client.zcard(keys.active("cj")) == 1


async def test_an_ended_request_leaves_its_callers_set_at_once(redis_client: Redis):
    keys = RedisKeys("places")
    queue = RedisRequestQueue(redis_client, keys, CONFIG)
    kept, cancelled = make_job(caller="cj"), make_job(caller="cj")
    for job in (kept, cancelled):
        await queue.enqueue(job, priority=5, ttl_seconds=600, caller_limit=5)

    await queue.cancel(cancelled.request_id)

    # Removed by the ending itself, not left for the check at the limit: no caller's set
    # grows with its history.
    assert await redis_client.zrange(keys.active("cj"), 0, -1) == [str(kept.request_id)]
