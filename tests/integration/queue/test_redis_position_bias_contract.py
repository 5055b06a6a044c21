"""The `PositionBiasStore` contract on `RedisPositionBiasStore` against a real redis-server."""

from __future__ import annotations

import uuid

import pytest
from redis.asyncio import Redis

import tests.contract.position_bias_contract as contract
from services.llm_provider_service.models import PositionCounts
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.position_bias import RedisPositionBiasStore

# A star import collects the contract here (see tests/unit/.../queue/test_memory.py for why).
from tests.contract.position_bias_contract import *  # noqa: F403


@pytest.fixture
def store_factory(redis_client: Redis) -> contract.StoreFactory:
    return lambda cap: RedisPositionBiasStore(
        redis_client, RedisKeys(f"t{uuid.uuid4().hex[:12]}"), max_models=cap
    )


async def test_two_replicas_share_one_report(redis_client: Redis) -> None:
    keys = RedisKeys(f"t{uuid.uuid4().hex[:12]}")
    one, two = (
        RedisPositionBiasStore(redis_client, keys),
        RedisPositionBiasStore(redis_client, keys),
    )
    await one.record(contract.MOCK, "m", first_won=True)
    await two.record(contract.MOCK, "m", first_won=False)
    assert await one.counts() == await two.counts() == [PositionCounts(contract.MOCK, "m", 2, 1)]


def test_every_contract_test_is_collected_here() -> None:
    contract_tests = {name for name in vars(contract) if name.startswith("test_")}
    assert contract_tests <= set(globals())
