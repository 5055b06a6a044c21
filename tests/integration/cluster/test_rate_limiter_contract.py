"""The `RateLimiter` contract on `RedisRateLimiter` on the session's Redis Cluster, its keys
in the limiter's own slot (`{prefix:rate}`), and one rate shared by every replica there."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from redis.asyncio.cluster import RedisCluster

import tests.contract.rate_limiter_contract as contract
from services.llm_provider_service.protocols import RateLimiter
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.rate_limiter import RedisRateLimiter

# See tests/unit/services/llm_provider_service/queue/test_memory.py for why a star import.
from tests.contract.rate_limiter_contract import *  # noqa: F403
from tests.integration.cluster.conftest import ShardKeys
from tests.support.redis_queue import ShiftedTime


@pytest.fixture
def keys(shard_keys: ShardKeys) -> RedisKeys:
    return shard_keys("rate")


@pytest.fixture
def shifted() -> ShiftedTime:
    return ShiftedTime()


@pytest.fixture
def limiter(cluster_client: RedisCluster, keys: RedisKeys, shifted: ShiftedTime) -> RateLimiter:
    return RedisRateLimiter(cluster_client, keys, time_offset_ms=shifted)


@pytest.fixture
def advance(shifted: ShiftedTime) -> Callable[[float], Awaitable[None]]:
    async def advance(seconds: float) -> None:
        shifted.advance(seconds)

    return advance


async def test_replicas_share_one_rate(cluster_client: RedisCluster, keys: RedisKeys):
    replicas = [RedisRateLimiter(cluster_client, keys) for _ in range(3)]

    waits = [await replicas[i % 3].acquire("cj", 5) for i in range(6)]

    assert waits[:5] == [0.0] * 5
    assert waits[5] > 0


def test_every_contract_test_is_collected_here() -> None:
    contract_tests = {name for name in vars(contract) if name.startswith("test_")}
    assert contract_tests <= set(globals())
