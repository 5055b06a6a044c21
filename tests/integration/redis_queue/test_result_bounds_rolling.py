"""The bounds on ended records across a rolling deploy, on the session's real redis-server:
records written by the previous version (no announced form stored beside the job, or
deleted by its retention purge without leaving `ended`) never break the bounds' accounting."""

from __future__ import annotations

from typing import cast

from redis.asyncio import Redis

from services.llm_provider_service.models import ComparisonJob
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.queue import RedisRequestQueue
from services.llm_provider_service.settings import QueueSettings
from tests.factories import make_job, make_result
from tests.support.redis_queue import QueueBuilder


async def end_and_announce(queue: RedisRequestQueue, job: ComparisonJob) -> None:
    [lease] = await queue.claim(job.provider, limit=1, owner="w")
    assert lease.queue_id == job.request_id
    assert await queue.complete(lease, make_result(job))
    await queue.mark_announced(job.request_id)


async def stored_bytes(redis: Redis, keys: RedisKeys, job: ComparisonJob) -> int:
    fields = cast(dict[str, str], await redis.hgetall(keys.request(str(job.request_id))))
    return sum(len(name.encode()) + len(value.encode()) for name, value in fields.items())


async def test_a_record_enqueued_by_the_previous_version_keeps_its_job_and_is_bounded(
    builder: QueueBuilder, queue_config: QueueSettings, redis_client: Redis
):
    queue = builder.build(queue_config.model_copy(update={"result_max_count": 1}))
    keys = RedisKeys(builder.prefix)
    old = make_job()
    await queue.enqueue(old, priority=5, ttl_seconds=3600)
    await redis_client.hdel(keys.request(str(old.request_id)), "job_announced")  # as v-1 wrote it

    await end_and_announce(queue, old)

    record = await queue.get(old.request_id)
    assert record is not None
    assert record.job == old  # nothing to replace it with: kept whole, as before
    new = make_job()
    await queue.enqueue(new, priority=5, ttl_seconds=3600)
    await end_and_announce(queue, new)
    assert await queue.get(old.request_id) is None  # still counted, and trimmed first
    assert await queue.get(new.request_id) is not None


async def test_a_record_deleted_by_the_previous_version_leaves_the_byte_count_exact(
    builder: QueueBuilder, queue_config: QueueSettings, redis_client: Redis
):
    queue = builder.build(queue_config.model_copy(update={"result_max_count": 2}))
    keys = RedisKeys(builder.prefix)
    jobs = [make_job() for _ in range(3)]
    for job in jobs[:2]:
        await queue.enqueue(job, priority=5, ttl_seconds=3600)
        await end_and_announce(queue, job)
    # v-1's retention purge deletes the record but knows nothing of `ended`.
    await redis_client.delete(keys.request(str(jobs[0].request_id)))

    await queue.enqueue(jobs[2], priority=5, ttl_seconds=3600)
    await end_and_announce(queue, jobs[2])

    assert await queue.get(jobs[1].request_id) is not None  # the vanished one made room
    assert await queue.get(jobs[2].request_id) is not None
    expected = sum([await stored_bytes(redis_client, keys, job) for job in jobs[1:]])
    assert await redis_client.get(f"{keys.tag}:ended:bytes") == str(expected)
    assert await redis_client.zcard(f"{keys.tag}:ended") == 2
