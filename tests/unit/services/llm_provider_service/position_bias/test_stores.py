"""The `PositionBiasStore` contract on the in-memory store and on the Redis store over
fakeredis (the real redis-server run is in tests/integration/queue)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import fakeredis
import pytest
from redis.asyncio import Redis

import tests.contract.position_bias_contract as contract
from services.llm_provider_service.position_bias.memory import InMemoryPositionBiasStore
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.position_bias import RedisPositionBiasStore

# A star import collects the contract here (see tests/unit/.../queue/test_memory.py for why).
from tests.contract.position_bias_contract import *  # noqa: F403


@pytest.fixture
async def redis_client() -> AsyncIterator[Redis]:
    client = fakeredis.FakeAsyncRedis(decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture(params=["memory", "fakeredis"])
def store_factory(request: pytest.FixtureRequest, redis_client: Redis) -> contract.StoreFactory:
    if request.param == "memory":
        return lambda cap: InMemoryPositionBiasStore(max_models=cap)
    return lambda cap: RedisPositionBiasStore(
        redis_client, RedisKeys(f"t{uuid.uuid4().hex[:12]}"), max_models=cap
    )


def test_every_contract_test_is_collected_here() -> None:
    contract_tests = {name for name in vars(contract) if name.startswith("test_")}
    assert contract_tests <= set(globals())
