"""The `RateLimiter` contract on a real redis-server, and what only Redis can show: one rate
shared by every replica, and no key left behind by an idle caller."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import pytest
from redis.asyncio import Redis

import tests.contract.rate_limiter_contract as contract
from services.llm_provider_service.protocols import RateLimiter
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.rate_limiter import RedisRateLimiter

# See tests/unit/services/llm_provider_service/queue/test_memory.py for why a star import.
from tests.contract.rate_limiter_contract import *  # noqa: F403
from tests.support.redis_queue import ShiftedTime


@pytest.fixture
def keys() -> RedisKeys:
    return RedisKeys(f"rate{uuid.uuid4().hex[:10]}")


@pytest.fixture
def shifted() -> ShiftedTime:
    return ShiftedTime()


@pytest.fixture
def limiter(redis_client: Redis, keys: RedisKeys, shifted: ShiftedTime) -> RateLimiter:
    return RedisRateLimiter(redis_client, keys, time_offset_ms=shifted)


@pytest.fixture
def advance(shifted: ShiftedTime) -> Callable[[float], Awaitable[None]]:
    async def advance(seconds: float) -> None:
        shifted.advance(seconds)

    return advance


async def test_replicas_share_one_rate(redis_client: Redis, keys: RedisKeys):
    replicas = [RedisRateLimiter(redis_client, keys) for _ in range(3)]

    waits = [await replicas[i % 3].acquire("cj", 5) for i in range(6)]

    assert waits[:5] == [0.0] * 5
    assert waits[5] > 0


async def test_an_idle_caller_leaves_no_key(redis_client: Redis, keys: RedisKeys):
    limiter = RedisRateLimiter(redis_client, keys)

    await limiter.acquire("cj", 600)  # one request: its TAT is 0.1 s ahead

    ttl_ms = await redis_client.pttl(keys.rate("cj"))
    assert 0 < ttl_ms <= 1100


def test_every_contract_test_is_collected_here() -> None:
    contract_tests = {name for name in vars(contract) if name.startswith("test_")}
    assert contract_tests <= set(globals())
