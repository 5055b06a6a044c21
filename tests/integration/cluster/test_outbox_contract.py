"""The `ResultOutbox` contract on `RedisResultOutbox` on the session's Redis Cluster, its keys
in the outbox's own slot (`{prefix:outbox}`), as the service shards them there."""

from __future__ import annotations

import pytest
from redis.asyncio.cluster import RedisCluster

import tests.contract.outbox_contract as contract
from services.llm_provider_service.redis.outbox import RedisResultOutbox

# A star import collects the contract here (see tests/unit/.../queue/test_memory.py for why).
from tests.contract.outbox_contract import *  # noqa: F403
from tests.integration.cluster.conftest import ShardKeys
from tests.support.redis_queue import ShiftedTime


@pytest.fixture
def shifted() -> ShiftedTime:
    return ShiftedTime()


@pytest.fixture
def outbox(
    cluster_client: RedisCluster, shard_keys: ShardKeys, shifted: ShiftedTime
) -> RedisResultOutbox:
    return RedisResultOutbox(
        cluster_client,
        shard_keys("outbox"),
        retention_seconds=contract.RETENTION,
        time_offset_ms=shifted,
    )


@pytest.fixture
def advance(shifted: ShiftedTime):
    async def advance(seconds: float) -> None:
        shifted.advance(seconds)

    return advance


def test_every_contract_test_is_collected_here() -> None:
    contract_tests = {name for name in vars(contract) if name.startswith("test_")}
    assert contract_tests <= set(globals())
