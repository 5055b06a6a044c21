"""The `RequestQueue` contract run against `ShardedRequestQueue` on the session's real
three-master Redis Cluster, each test under a fresh key prefix."""

from __future__ import annotations

import uuid

import pytest
from redis.asyncio.cluster import RedisCluster

import tests.contract.queue_contract as contract
from services.llm_provider_service.protocols import RequestQueue
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.sharded_queue import ShardedRequestQueue
from services.llm_provider_service.settings import QueueSettings

# See tests/unit/services/llm_provider_service/queue/test_memory.py for why a star import.
from tests.contract.queue_contract import *  # noqa: F403
from tests.support.redis_queue import ShiftedTime


@pytest.fixture
def clock() -> ShiftedTime:
    return ShiftedTime()


@pytest.fixture
def queue_factory(cluster_client: RedisCluster):
    prefix = f"t{uuid.uuid4().hex[:12]}"

    def build(config: QueueSettings, time: ShiftedTime) -> RequestQueue:
        return ShardedRequestQueue(cluster_client, RedisKeys(prefix), config, time_offset_ms=time)

    return build


@pytest.fixture
def advance(clock: ShiftedTime):
    async def advance(seconds: float) -> None:
        clock.advance(seconds)

    return advance


def test_every_contract_test_is_collected_here() -> None:
    contract_tests = {name for name in vars(contract) if name.startswith("test_")}
    assert contract_tests <= set(globals())


# The one contract test this binding replaces: each shard keeps its own fence counter (a
# script cannot INCR a key in another slot), so tokens grow per provider, not across
# providers. Nothing compares the tokens of different requests: a lease is current while its
# token equals its record's (`holds` in lua/queue/_lib.lua), which per-shard tokens keep.
async def test_every_claim_gets_a_greater_fence_token(  # type: ignore[no-redef]
    queue: RequestQueue, advance: contract.Advance
):
    await contract._enqueue(queue)
    await contract._enqueue(queue)
    await contract._enqueue(queue, contract.OPENAI)
    first = await contract._claim_one(queue)
    other = await contract._claim_one(queue, contract.OPENAI)
    second = await contract._claim_one(queue)
    await advance(15)  # every lease expires; the first is claimed again

    again = await contract._claim_one(queue)

    assert second.token > first.token
    assert again.token > second.token
    assert again.queue_id == first.queue_id
    assert again.attempt == 2
    assert other.token >= 1
