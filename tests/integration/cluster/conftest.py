"""Fixtures of the cluster tests: a cluster-aware client of the session's Redis Cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio.cluster import RedisCluster

from tests.support.redis_server import RedisClusterServer


@pytest.fixture
async def cluster_client(redis_cluster: RedisClusterServer) -> AsyncIterator[RedisCluster]:
    client = RedisCluster.from_url(redis_cluster.url, decode_responses=True)
    await client.initialize()
    yield client
    await client.aclose()
