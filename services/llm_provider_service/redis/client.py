"""`RedisClient`: the client every Redis adapter is given, for a single Redis or a Redis
Cluster (`REDIS_CLUSTER=true`). Both speak the same commands; on a cluster, every script's
keys share one slot (`RedisKeys.sharded`) and non-transactional pipelines may span slots, but
a cluster pipeline refuses keyless commands such as TIME (`server_time_ms`)."""

from __future__ import annotations

from typing import Any, TypeAlias

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from services.llm_provider_service.redis.errors import UNREACHABLE
from services.llm_provider_service.settings import ENV_PREFIX, ConfigurationError

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


async def check_cluster_mode(redis: RedisClient) -> None:
    """Refuse to start (`ConfigurationError`) when `REDIS_CLUSTER` does not match the Redis
    at `REDIS_URL`: a cluster client on a plain Redis cannot start at all, and a plain client
    on a cluster node gets MOVED for every key that node does not serve, which would look
    like an endless outage. An unreachable Redis is left to the durability check (a warning,
    and the service starts)."""
    if isinstance(redis, RedisCluster):
        try:
            await redis.initialize()
        except redis_errors.RedisClusterException as exc:
            if isinstance(exc, UNREACHABLE):
                return
            raise ConfigurationError(
                f"{ENV_PREFIX}REDIS_CLUSTER is true, but REDIS_URL does not name a node of a "
                f"Redis Cluster ({exc}); set it to false for a single Redis"
            ) from exc
        return
    try:
        info = await redis.info("cluster")
    except UNREACHABLE:
        return
    except redis_errors.ResponseError:  # a managed Redis that hides INFO: nothing to tell
        return
    if str(info.get("cluster_enabled", "0")) == "1":
        raise ConfigurationError(
            f"REDIS_URL names a node of a Redis Cluster; set {ENV_PREFIX}REDIS_CLUSTER=true "
            "(a plain client would be refused every key that node does not serve)"
        )
