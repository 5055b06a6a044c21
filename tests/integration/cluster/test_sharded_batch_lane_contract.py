"""The `RequestQueue` contract run against the batch lane's `ShardedRequestQueue`
(`batch_lane=True`, under the lane's keys) on the session's real three-master Redis Cluster."""

from __future__ import annotations

import uuid

import pytest
from redis.asyncio.cluster import RedisCluster

import tests.contract.queue_contract as contract
import tests.integration.cluster.test_sharded_queue_contract as sharded
from services.llm_provider_service.protocols import RequestQueue
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.sharded_queue import ShardedRequestQueue
from services.llm_provider_service.settings import QueueSettings

# See tests/unit/services/llm_provider_service/queue/test_memory.py for why a star import.
from tests.contract.queue_contract import *  # noqa: F403
from tests.support.redis_queue import ShiftedTime


@pytest.fixture  # type: ignore[no-redef]  # the contract's says False
def batch_lane() -> bool:
    return True


@pytest.fixture
def clock() -> ShiftedTime:
    return ShiftedTime()


@pytest.fixture
def queue_factory(cluster_client: RedisCluster):
    prefix = f"t{uuid.uuid4().hex[:12]}"

    def build(config: QueueSettings, time: ShiftedTime) -> RequestQueue:
        keys = RedisKeys(prefix).batch_lane()
        return ShardedRequestQueue(
            cluster_client, keys, config, time_offset_ms=time, batch_lane=True
        )

    return build


@pytest.fixture
def advance(clock: ShiftedTime):
    async def advance(seconds: float) -> None:
        clock.advance(seconds)

    return advance


def test_every_contract_test_is_collected_here() -> None:
    contract_tests = {name for name in vars(contract) if name.startswith("test_")}
    assert contract_tests <= set(globals())


# As in test_sharded_queue_contract.py: fence tokens grow per shard.
test_every_claim_gets_a_greater_fence_token = sharded.test_every_claim_gets_a_greater_fence_token
