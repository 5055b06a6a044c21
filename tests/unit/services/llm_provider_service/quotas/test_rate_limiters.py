"""The `RateLimiter` contract in memory and on fakeredis: the fast runs of the suite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import fakeredis
import pytest
from redis.asyncio import Redis

import tests.contract.rate_limiter_contract as contract
from services.llm_provider_service.protocols import RateLimiter
from services.llm_provider_service.quotas.memory import InMemoryRateLimiter
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.rate_limiter import RedisRateLimiter

# See tests/unit/services/llm_provider_service/queue/test_memory.py for why a star import.
from tests.contract.rate_limiter_contract import *  # noqa: F403
from tests.support.redis_queue import ShiftedTime


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "fakeredis"])
async def harness(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[RateLimiter, Callable[[float], Awaitable[None]]]]:
    if request.param == "memory":
        clock = FakeClock()

        async def advance_memory(seconds: float) -> None:
            clock.now += seconds

        yield InMemoryRateLimiter(clock), advance_memory
        return
    client: Redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    shifted = ShiftedTime()

    async def advance_redis(seconds: float) -> None:
        shifted.advance(seconds)

    yield RedisRateLimiter(client, RedisKeys("rate"), time_offset_ms=shifted), advance_redis
    await client.aclose()


@pytest.fixture
def limiter(harness: tuple[RateLimiter, Callable[[float], Awaitable[None]]]) -> RateLimiter:
    return harness[0]


@pytest.fixture
def advance(
    harness: tuple[RateLimiter, Callable[[float], Awaitable[None]]],
) -> Callable[[float], Awaitable[None]]:
    return harness[1]


def test_every_contract_test_is_collected_here() -> None:
    contract_tests = {name for name in vars(contract) if name.startswith("test_")}
    assert contract_tests <= set(globals())
