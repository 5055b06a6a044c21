"""On a Redis Cluster, every key each queue script touches is in its shard's slot: checked
with MONITOR on every master while `ShardedRequestQueue` runs every queue script (the single
Redis version, `tests/integration/queue/test_script_keys.py`, shares the scenario)."""

from __future__ import annotations

import uuid
from contextlib import AsyncExitStack

from redis.asyncio.cluster import RedisCluster

from common_core.enums import LLMProviderType
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.sharded_queue import ShardedRequestQueue
from services.llm_provider_service.settings import QueueSettings
from tests.factories import make_job
from tests.integration.queue.test_script_keys import (
    Touched,
    run_queue_scripts,
    undeclared,
    watched,
)
from tests.support.redis_queue import ShiftedTime
from tests.support.redis_server import RedisClusterServer


def tag_of(key: str) -> str:
    return key[: key.index("}") + 1]


async def test_every_queue_script_touches_only_its_shards_slot(
    redis_cluster: RedisClusterServer, cluster_client: RedisCluster
):
    keys, time = RedisKeys(f"k{uuid.uuid4().hex[:10]}"), ShiftedTime()
    shard_tags = {keys.sharded(p.value).tag for p in LLMProviderType}
    async with AsyncExitStack() as stack:
        # "{prefix:" starts every shard's tag, so each master's watch sees all of them.
        on_master: list[Touched] = [
            await stack.enter_async_context(watched(node, keys.tag[:-1] + ":"))
            for node in redis_cluster.nodes
        ]
        await run_queue_scripts(cluster_client, keys, time, build=ShardedRequestQueue)
        queue = ShardedRequestQueue(cluster_client, keys, QueueSettings(), time_offset_ms=time)
        for provider in LLMProviderType:  # every shard's enqueue and claim
            await queue.enqueue(make_job(provider), priority=0, ttl_seconds=60)
            await queue.claim(provider, limit=1, owner="w")

    touched = [entry for master in on_master for entry in master.declared]
    assert sum(master.scripts for master in on_master) >= 40
    assert sum(1 for master in on_master if master.scripts) >= 2  # several masters
    tags_used = set()
    for declared, command, key in touched:
        [tag] = {tag_of(k) for k in declared}  # a script's KEYS share one tag
        assert tag in shard_tags, (tag, declared)
        assert tag_of(key) == tag, (command, key, tag)
        tags_used.add(tag)
    assert tags_used == shard_tags
    for tag in shard_tags:
        mine = Touched([entry for entry in touched if tag_of(next(iter(entry[0]))) == tag])
        assert undeclared(mine, tag) == []
