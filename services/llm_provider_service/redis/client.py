"""`RedisClient`: the client every Redis adapter is given, for a single Redis or a Redis
Cluster (`REDIS_CLUSTER=true`). Both speak the same commands; on a cluster, every script's
keys share one slot (`RedisKeys.sharded`) and non-transactional pipelines may span slots, but
a cluster pipeline refuses keyless commands such as TIME (`server_time_ms`)."""

from __future__ import annotations

from typing import Any, TypeAlias

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

RedisClient: TypeAlias = Redis | RedisCluster


async def server_time_ms(redis: RedisClient, key: str) -> int:
    """Redis `TIME` in ms, of the server that holds `key`: on a cluster, the master whose
    clock the scripts touching `key` read, so ages computed from it agree with theirs.
    Asked on its own, because a cluster pipeline refuses TIME."""
    if isinstance(redis, RedisCluster):
        await redis.initialize()  # the slots map, learnt once, names the node
        secs, micros = await redis.time(target_nodes=redis.get_node_from_key(key))
    else:
        secs, micros = await redis.time()
    return int(secs) * 1000 + int(micros) // 1000


async def server_memory_info(redis: RedisClient, key: str) -> dict[str, Any]:
    """`INFO memory` of the server that holds `key`: on a cluster, the master that would
    refuse `key`'s writes at its maxmemory (a cluster client sends INFO to any one node)."""
    if isinstance(redis, RedisCluster):
        await redis.initialize()
        return await redis.info("memory", target_nodes=redis.get_node_from_key(key))
    return await redis.info("memory")
