"""The `ResultOutbox` contract run against `RedisResultOutbox` on a real redis-server."""

from __future__ import annotations

import uuid

import pytest
from redis.asyncio import Redis

import tests.contract.outbox_contract as contract
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.outbox import RedisResultOutbox

# A star import collects the contract here (see tests/unit/.../queue/test_memory.py for why).
from tests.contract.outbox_contract import *  # noqa: F403
from tests.support.redis_queue import ShiftedTime


@pytest.fixture
def shifted() -> ShiftedTime:
    return ShiftedTime()


@pytest.fixture
def outbox(redis_client: Redis, shifted: ShiftedTime) -> RedisResultOutbox:
    keys = RedisKeys(f"t{uuid.uuid4().hex[:12]}")
    return RedisResultOutbox(
        redis_client, keys, retention_seconds=contract.RETENTION, time_offset_ms=shifted
    )


@pytest.fixture
def advance(shifted: ShiftedTime, redis_client: Redis):
    async def advance(seconds: float) -> None:
        shifted.advance(seconds)

    return advance


def test_every_contract_test_is_collected_here() -> None:
    contract_tests = {name for name in vars(contract) if name.startswith("test_")}
    assert contract_tests <= set(globals())
