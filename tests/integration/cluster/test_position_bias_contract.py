"""The `PositionBiasStore` contract on `RedisPositionBiasStore` on the session's Redis
Cluster, its keys in the store's own slot (`{prefix:posbias}`)."""

from __future__ import annotations

import pytest
from redis.asyncio.cluster import RedisCluster

import tests.contract.position_bias_contract as contract
from services.llm_provider_service.models import PositionCounts
from services.llm_provider_service.redis.position_bias import RedisPositionBiasStore

# A star import collects the contract here (see tests/unit/.../queue/test_memory.py for why).
from tests.contract.position_bias_contract import *  # noqa: F403
from tests.integration.cluster.conftest import ShardKeys


@pytest.fixture
def store_factory(cluster_client: RedisCluster, shard_keys: ShardKeys) -> contract.StoreFactory:
    return lambda cap: RedisPositionBiasStore(cluster_client, shard_keys("posbias"), max_models=cap)


async def test_two_replicas_share_one_report(
    cluster_client: RedisCluster, shard_keys: ShardKeys
) -> None:
    keys = shard_keys("posbias")
    one, two = (
        RedisPositionBiasStore(cluster_client, keys),
        RedisPositionBiasStore(cluster_client, keys),
    )
    await one.record(contract.MOCK, "m", first_won=True)
    await two.record(contract.MOCK, "m", first_won=False)
    assert await one.counts() == await two.counts() == [PositionCounts(contract.MOCK, "m", 2, 1)]


def test_every_contract_test_is_collected_here() -> None:
    contract_tests = {name for name in vars(contract) if name.startswith("test_")}
    assert contract_tests <= set(globals())
