"""The `RequestQueue` contract run against the batch lane's `RedisRequestQueue`
(`batch_lane=True`) on a real redis-server."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

import tests.contract.queue_contract as contract
from services.llm_provider_service.protocols import RequestQueue
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.queue import RedisRequestQueue
from services.llm_provider_service.settings import QueueSettings

# See tests/unit/services/llm_provider_service/queue/test_memory.py for why a star import.
from tests.contract.queue_contract import *  # noqa: F403
from tests.support.redis_queue import QueueBuilder


@pytest.fixture  # type: ignore[no-redef]  # the contract's says False
def batch_lane() -> bool:
    return True


@pytest.fixture
def clock(redis_client: Redis) -> QueueBuilder:
    return QueueBuilder(redis_client)


@pytest.fixture
def queue_factory():
    def build(config: QueueSettings, builder: QueueBuilder) -> RequestQueue:
        keys = RedisKeys(builder.prefix).batch_lane()
        return RedisRequestQueue(
            builder.redis, keys, config, time_offset_ms=builder.time, batch_lane=True
        )

    return build


@pytest.fixture
def advance(clock: QueueBuilder):
    async def advance(seconds: float) -> None:
        clock.time.advance(seconds)

    return advance


def test_every_contract_test_is_collected_here() -> None:
    contract_tests = {name for name in vars(contract) if name.startswith("test_")}
    assert contract_tests <= set(globals())
