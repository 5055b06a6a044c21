"""Fixtures for crash tests: real service processes on the session's redis-server, each test
under its own key prefix, and everything put back (processes killed, Redis running) after."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.queue import RedisRequestQueue
from services.llm_provider_service.settings import QueueSettings
from tests.integration.crash.support import QueueFactory
from tests.support.processes import ProcessPool, ensure_redis_running
from tests.support.redis_server import RedisServer


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The session's redis-server, running again after the test whatever the test did."""
    try:
        yield redis_server.url
    finally:
        ensure_redis_running(redis_server)


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test's own, as LLM_PROVIDER_SERVICE_QUEUE_KEY_PREFIX."""
    return f"crash{uuid.uuid4().hex[:10]}"


@pytest.fixture
def processes(redis_url: str, prefix: str, tmp_path: Path) -> Iterator[ProcessPool]:
    """Starts service processes on the test's prefix; kills every one still running after."""
    pool = ProcessPool(tmp_path, redis_url, prefix)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
async def redis_client(
    redis_server: RedisServer, redis_url: str, prefix: str
) -> AsyncIterator[Redis]:
    """A client of the test's own; the test's keys are deleted afterwards."""
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()
        ensure_redis_running(redis_server)  # the test may have left it killed or paused
        # A fresh client: the test's pooled connections may be stale after a restart.
        cleaner = Redis.from_url(redis_url, decode_responses=True)
        try:
            keys = [key async for key in cleaner.scan_iter(match=f"{{{prefix}}}:*", count=1000)]
            for start in range(0, len(keys), 500):
                await cleaner.unlink(*keys[start : start + 500])
        finally:
            await cleaner.aclose()


@pytest.fixture
def make_queue(redis_client: Redis, prefix: str) -> QueueFactory:
    """`make_queue(max_attempts=..., lease_seconds=...)`: the queue the service processes
    use under the test's prefix, for the test to enqueue into and read. Its `max_attempts`
    is what the requests it enqueues get."""

    def build(*, max_attempts: int = 10, lease_seconds: float = 30.0) -> RedisRequestQueue:
        config = QueueSettings(
            max_size=100_000,
            max_attempts=max_attempts,
            lease_seconds=lease_seconds,
            priority_boost_seconds=60.0,
            result_retention_seconds=3600.0,
        )
        return RedisRequestQueue(redis_client, RedisKeys(prefix), config)

    return build
