"""Fixtures for the queue requirement tests on the session's real redis-server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from services.llm_provider_service.redis.queue import RedisRequestQueue
from services.llm_provider_service.settings import QueueSettings, Settings
from tests.integration.redis_queue.support import Rig, build_rig
from tests.support.redis_queue import QueueBuilder
from tests.support.redis_server import RedisServer

MakeRig = Callable[..., Awaitable[Rig]]


@pytest.fixture
def queue_config() -> QueueSettings:
    return QueueSettings(
        max_size=10_000,
        max_attempts=3,
        lease_seconds=10.0,
        priority_boost_seconds=1.0,
        result_retention_seconds=600.0,
    )


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def builder(redis_client: Redis) -> QueueBuilder:
    """A fresh key prefix and a `ShiftedTime` at offset 0."""
    return QueueBuilder(redis_client)


@pytest.fixture
def queue(builder: QueueBuilder, queue_config: QueueSettings) -> RedisRequestQueue:
    return builder.build(queue_config)


@pytest.fixture
async def make_rig(
    make_settings: Callable[..., Settings],
    redis_server: RedisServer,
    redis_client: Redis,
    builder: QueueBuilder,
) -> AsyncIterator[MakeRig]:
    """`await make_rig(**settings)`: a worker (not yet running) on `builder`'s keys and time.

    Every rig of a test shares the prefix and the time, as replicas share one Redis.
    """
    async with contextlib.AsyncExitStack() as stack:

        async def make(**overrides: Any) -> Rig:
            values: dict[str, Any] = {
                "enable_queue_persistence": True,
                "redis_url": redis_server.url,
                "queue_key_prefix": builder.prefix,
                "circuit_breaker_failure_threshold": 50,
                "circuit_breaker_reset_timeout_seconds": 30.0,
                **overrides,
            }
            return await build_rig(make_settings(**values), redis_client, builder, stack)

        yield make
