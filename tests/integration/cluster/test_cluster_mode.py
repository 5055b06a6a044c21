"""The start-up check that `REDIS_CLUSTER` matches the Redis at `REDIS_URL`: a mismatch is a
configuration error (exit code 2), not a crash or an endless outage; an unreachable Redis is
left to the durability check (a warning, and the service starts)."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from services.llm_provider_service.redis.client import RedisClient, check_cluster_mode
from services.llm_provider_service.settings import ConfigurationError
from tests.support.redis_server import RedisClusterServer, RedisServer, free_port


async def _check(client: RedisClient) -> None:
    try:
        await check_cluster_mode(client)
    finally:
        await client.aclose()


async def test_a_matching_redis_passes(
    redis_server: RedisServer, redis_cluster: RedisClusterServer
):
    await _check(Redis.from_url(redis_server.url))
    await _check(RedisCluster.from_url(redis_cluster.url))


async def test_a_cluster_client_on_a_plain_redis_is_refused(redis_server: RedisServer):
    with pytest.raises(ConfigurationError, match="REDIS_URL does not name a node of a Redis"):
        await _check(RedisCluster.from_url(redis_server.url))


async def test_a_plain_client_on_a_cluster_node_is_refused(redis_cluster: RedisClusterServer):
    with pytest.raises(ConfigurationError, match="set LLM_PROVIDER_SERVICE_REDIS_CLUSTER=true"):
        await _check(Redis.from_url(redis_cluster.url))


@pytest.mark.parametrize("client", [Redis, RedisCluster])
async def test_an_unreachable_redis_is_left_to_the_durability_check(
    client: type[Redis] | type[RedisCluster],
):
    url = f"redis://127.0.0.1:{free_port()}/0"
    await _check(client.from_url(url, socket_connect_timeout=0.5))
