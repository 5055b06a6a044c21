"""Fixtures of the tests on the session's Redis Cluster: a cluster client, and each store's
keys as the service shards them there (`store_keys` in `di/stores.py`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio.cluster import RedisCluster

from services.llm_provider_service.di.stores import store_keys
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.settings.infrastructure import RedisSettings
from tests.support.redis_server import RedisClusterServer

ShardKeys = Callable[[str], RedisKeys]


@pytest.fixture
async def cluster_client(redis_cluster: RedisClusterServer) -> AsyncIterator[RedisCluster]:
    client = RedisCluster.from_url(redis_cluster.url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def shard_keys() -> ShardKeys:
    """`shard_keys("outbox")`: a fresh prefix's keys for that store, as on a cluster."""
    prefix = f"t{uuid.uuid4().hex[:12]}"
    return lambda store: store_keys(RedisKeys(prefix), RedisSettings(cluster=True), store)
