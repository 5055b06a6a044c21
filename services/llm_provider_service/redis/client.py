"""`RedisClient`: the client every Redis adapter is given, for a single Redis or a Redis
Cluster (`REDIS_CLUSTER=true`). Both speak the same commands; on a cluster, every script's
keys share one slot (`RedisKeys.sharded`) and non-transactional pipelines may span slots."""

from __future__ import annotations

from typing import TypeAlias

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

RedisClient: TypeAlias = Redis | RedisCluster
