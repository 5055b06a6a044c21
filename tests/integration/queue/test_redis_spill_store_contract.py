"""The `SpillStore` contract run against `RedisSpillStore` on a real redis-server."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis

import tests.contract.spill_store_contract as contract
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.spill_store import RedisSpillStore

# A star import collects the contract here (see tests/unit/.../queue/test_memory.py for why).
from tests.contract.spill_store_contract import *  # noqa: F403


@pytest.fixture
def store(redis_client: Redis) -> RedisSpillStore:
    return RedisSpillStore(redis_client, RedisKeys(f"t{uuid.uuid4().hex[:12]}"))


@pytest.fixture
def advance():
    async def advance(seconds: float) -> None:
        await asyncio.sleep(seconds)  # a hold's expiry is Redis time: it passes for real

    return advance


def test_every_contract_test_is_collected_here() -> None:
    contract_tests = {name for name in vars(contract) if name.startswith("test_")}
    assert contract_tests <= set(globals())
