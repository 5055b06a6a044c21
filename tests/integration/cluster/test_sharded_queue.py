"""What sharding adds to the queue contract, on the session's real Redis Cluster: one slot
per provider spread over the masters, limits that stay global, ids found in any shard, a
master down failing only its shards, and a wake-up that crosses shards."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
from redis.asyncio.cluster import RedisCluster

from common_core.enums import LLMProviderType, QueueStatus
from services.llm_provider_service.errors import (
    NotFoundError,
    QueueFullError,
    QueueUnavailableError,
    QuotaExceededError,
)
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.sharded_queue import ShardedRequestQueue
from services.llm_provider_service.settings import QueueSettings
from tests.factories import make_job, make_result
from tests.support.redis_server import RedisClusterServer

MOCK, OPENAI, GOOGLE = LLMProviderType.MOCK, LLMProviderType.OPENAI, LLMProviderType.GOOGLE
TTL = 3600
CONFIG = QueueSettings(max_size=50, max_attempts=3, lease_seconds=10.0)


def port_of(client: RedisCluster, keys: RedisKeys) -> int:
    node = client.get_node_from_key(keys.fence)
    assert node is not None
    return int(node.port)


def spread_prefix(client: RedisCluster) -> str:
    """A fresh prefix whose MOCK shard, OPENAI shard and wake list are on three different
    masters (so killing MOCK's master leaves the other two up)."""
    while True:
        prefix = f"s{uuid.uuid4().hex[:10]}"
        keys = RedisKeys(prefix)
        ports = {port_of(client, keys.sharded(shard)) for shard in ("mock", "openai", "wake")}
        if len(ports) == 3:
            return prefix


@pytest.fixture
async def prefix(cluster_client: RedisCluster) -> str:
    await cluster_client.initialize()  # learns the slots, which `spread_prefix` looks up
    return spread_prefix(cluster_client)


def sharded(client: RedisCluster, prefix: str, config: QueueSettings = CONFIG):
    return ShardedRequestQueue(client, RedisKeys(prefix), config)


async def test_each_providers_keys_are_under_its_own_tag_on_several_masters(
    cluster_client: RedisCluster, prefix: str
):
    queue = sharded(cluster_client, prefix)
    jobs = {provider: make_job(provider) for provider in LLMProviderType}
    for job in jobs.values():
        await queue.enqueue(job, priority=5, ttl_seconds=TTL)

    for provider, job in jobs.items():
        shard = RedisKeys(prefix).sharded(provider.value)
        for elsewhere in LLMProviderType:
            other = RedisKeys(prefix).sharded(elsewhere.value)
            held = await cluster_client.exists(other.request(str(job.request_id)))
            assert held == (elsewhere is provider)
        assert await cluster_client.zcard(shard.ready(provider)) == 1
        assert await cluster_client.exists(RedisKeys(prefix).request(str(job.request_id))) == 0
    masters = {port_of(cluster_client, RedisKeys(prefix).sharded(p.value)) for p in jobs}
    assert len(masters) >= 2


async def test_the_max_size_holds_across_shards(cluster_client: RedisCluster, prefix: str):
    queue = sharded(cluster_client, prefix, CONFIG.model_copy(update={"max_size": 3}))
    kept = [make_job(MOCK), make_job(MOCK), make_job(OPENAI)]
    for job in kept:
        await queue.enqueue(job, priority=5, ttl_seconds=TTL)

    with pytest.raises(QueueFullError) as refused:
        await queue.enqueue(make_job(GOOGLE), priority=5, ttl_seconds=TTL)

    assert refused.value.details == {"max_size": 3}
    again = await queue.enqueue(kept[2], priority=5, ttl_seconds=TTL)  # idempotent when full
    assert again.queue_id == kept[2].request_id
    assert (await queue.stats()).total_depth == 3


async def test_a_callers_limit_holds_across_shards(cluster_client: RedisCluster, prefix: str):
    queue = sharded(cluster_client, prefix)
    first, second = make_job(MOCK, caller="cj"), make_job(OPENAI, caller="cj")
    for job in (first, second):
        await queue.enqueue(job, priority=5, ttl_seconds=TTL, caller_limit=2)

    for provider in (GOOGLE, MOCK):
        with pytest.raises(QuotaExceededError) as refused:
            await queue.enqueue(
                make_job(provider, caller="cj"), priority=5, ttl_seconds=TTL, caller_limit=2
            )
        assert refused.value.details["limit"] == 2
    again = await queue.enqueue(second, priority=5, ttl_seconds=TTL, caller_limit=2)
    assert again.queue_id == second.request_id  # idempotent at the limit
    await queue.enqueue(make_job(GOOGLE, caller="other"), priority=5, ttl_seconds=TTL)

    [lease] = await queue.claim(MOCK, limit=1, owner="w")
    assert await queue.complete(lease, make_result(lease.job))
    third = make_job(GOOGLE, caller="cj")
    await queue.enqueue(third, priority=5, ttl_seconds=TTL, caller_limit=2)
    assert (await queue.get(third.request_id)) is not None


async def test_an_id_is_found_in_any_shard_by_a_replica_that_never_saw_it(
    cluster_client: RedisCluster, prefix: str
):
    api = sharded(cluster_client, prefix)
    jobs = [make_job(provider) for provider in LLMProviderType]
    for job in jobs:
        await api.enqueue(job, priority=5, ttl_seconds=TTL)
    replica = sharded(cluster_client, prefix)

    for job in jobs:
        record = await replica.get(job.request_id)
        assert record is not None
        assert record.provider is job.provider
        assert await replica.position(job.request_id) == 1
    cancelled = await replica.cancel(jobs[1].request_id)
    assert cancelled.status is QueueStatus.CANCELLED
    assert await replica.get(uuid.uuid4()) is None
    assert await replica.position(uuid.uuid4()) is None
    with pytest.raises(NotFoundError):
        await replica.cancel(uuid.uuid4())
    await replica.mark_announced(uuid.uuid4())  # nothing to do, no error


async def test_wait_for_work_wakes_on_an_enqueue_to_another_shard(
    cluster_client: RedisCluster, prefix: str
):
    worker, api = sharded(cluster_client, prefix), sharded(cluster_client, prefix)
    waiter = asyncio.create_task(worker.wait_for_work(30))

    await api.enqueue(make_job(OPENAI), priority=5, ttl_seconds=TTL)

    await asyncio.wait_for(waiter, timeout=10)


async def test_a_killed_master_fails_only_its_shards_and_keeps_their_requests(
    redis_cluster: RedisClusterServer,
    cluster_client: RedisCluster,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
):
    queue = sharded(cluster_client, prefix)
    waiting = [make_job(MOCK) for _ in range(3)]
    for job in waiting:
        await queue.enqueue(job, priority=5, ttl_seconds=TTL)
    master = redis_cluster.master_of(RedisKeys(prefix).sharded("mock").fence)
    redis_cluster.kill(master)
    try:
        other = make_job(OPENAI)
        await queue.enqueue(other, priority=5, ttl_seconds=TTL)
        [lease] = await queue.claim(OPENAI, limit=5, owner="w")
        assert lease.queue_id == other.request_id
        assert await queue.complete(lease, make_result(other))
        with pytest.raises(QueueUnavailableError):
            await queue.enqueue(make_job(MOCK), priority=5, ttl_seconds=TTL)
        with pytest.raises(QueueUnavailableError):
            await queue.claim(MOCK, limit=5, owner="w")
        with pytest.raises(QueueUnavailableError):  # it may be in the shard that is down
            await sharded(cluster_client, prefix).get(waiting[0].request_id)
        with caplog.at_level(logging.INFO, logger="services.llm_provider_service.redis"):
            for _ in range(3):  # three passes of a worker's loop: the other shards' reaps
                await queue.reap()
    finally:
        redis_cluster.restart(master)
    with caplog.at_level(logging.INFO, logger="services.llm_provider_service.redis"):
        await queue.reap()

    # One WARNING when the shard went down, one INFO when it answered: not one per pass.
    outage = [
        (r.levelname, r.getMessage()) for r in caplog.records if "shard mock" in r.getMessage()
    ]
    assert [level for level, _ in outage] == ["WARNING", "INFO"], outage
    assert outage[0][1].startswith("queue shard mock unreachable; ")
    assert outage[1][1] == "queue shard mock answers again"
    leases = await queue.claim(MOCK, limit=10, owner="w")
    assert sorted(lease.queue_id for lease in leases) == sorted(j.request_id for j in waiting)
    assert all(lease.attempt == 1 for lease in leases)
