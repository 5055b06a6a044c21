"""The `SpillStore` contract on `RedisSpillStore` on the session's Redis Cluster, its keys in
the spill store's own slot (`{prefix:spill}`), as the service shards them there."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio.cluster import RedisCluster

import tests.contract.spill_store_contract as contract
from services.llm_provider_service.redis.spill_store import RedisSpillStore

# A star import collects the contract here (see tests/unit/.../queue/test_memory.py for why).
from tests.contract.spill_store_contract import *  # noqa: F403
from tests.integration.cluster.conftest import ShardKeys


@pytest.fixture
def store(cluster_client: RedisCluster, shard_keys: ShardKeys) -> RedisSpillStore:
    return RedisSpillStore(cluster_client, shard_keys("spill"))


@pytest.fixture
def advance():
    async def advance(seconds: float) -> None:
        await asyncio.sleep(seconds)  # a hold's expiry is Redis time: it passes for real

    return advance


def test_every_contract_test_is_collected_here() -> None:
    contract_tests = {name for name in vars(contract) if name.startswith("test_")}
    assert contract_tests <= set(globals())
