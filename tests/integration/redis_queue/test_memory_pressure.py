"""Redis memory: ended records stay within their byte budget under a flood of large requests,
memory pressure shows in `/healthz` and a gauge, and a write Redis refuses at its
`maxmemory` is 503 `QUEUE_MEMORY_FULL` (queue and idempotency store alike).

Each test has its own redis-server (AOF on, `noeviction`, as deployed), so its memory
figures are its own and a small `maxmemory` harms no other test.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from redis import exceptions as redis_errors
from redis.asyncio import Redis

from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.queue import RedisRequestQueue
from services.llm_provider_service.settings import QueueSettings
from tests.factories import make_job, make_request, make_result
from tests.integration.conftest import StartApp
from tests.integration.redis_queue.support import wait_until
from tests.support.redis_server import RedisServer

COMPARISON = "/api/v1/comparison"
ESSAY_CHARS = 125_000  # two of these: a 250 KB request, just under QUEUE_MAX_REQUEST_BYTES
FLOOD = 300
RESULT_BUDGET = 200_000  # QUEUE_RESULT_MAX_BYTES of the flood test
# What may come on top of the ended records' budget after the flood: the outbox's state of
# 300 delivered result events, the Lua script cache, sorted-set and hash bookkeeping, client
# buffers. Measured at about 3 MB; without the bounds the flood keeps 75 MB of essays.
OVERHEAD = 6_000_000


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", fsync="everysec")
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
async def raw(own_redis: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(own_redis.url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def prefix() -> str:
    return f"mem{uuid.uuid4().hex[:10]}"


def body(essay_chars: int = 40, **fields: Any) -> dict[str, Any]:
    return {
        "user_prompt": "Which essay is better argued?",
        "essay_a": "a" * essay_chars,
        "essay_b": "b" * essay_chars,
        **fields,
    }


async def used_memory(raw: Redis) -> int:
    return int((await raw.info("memory"))["used_memory"])


async def fill_to_oom(raw: Redis) -> None:
    """Cap Redis below what it already uses: under `noeviction` it refuses every write."""
    await raw.config_set("maxmemory", str(await used_memory(raw) // 2))
    with pytest.raises(redis_errors.OutOfMemoryError):
        await raw.set("ballast", "x")


async def start(start_app: StartApp, server: RedisServer, prefix: str, **values: Any) -> Any:
    return await start_app(
        enable_queue_persistence=True,
        redis_url=server.url,
        queue_key_prefix=prefix,
        **values,
    )


# -- QUEUE_MEMORY_FULL -----------------------------------------------------------------------


@pytest.mark.parametrize("through", ["queue", "idempotency_store"])
async def test_a_request_refused_for_memory_is_503_queue_memory_full(
    start_app: StartApp, own_redis: RedisServer, raw: Redis, prefix: str, through: str
):
    client = await start(start_app, own_redis, prefix, worker_enabled=False)
    await fill_to_oom(raw)
    correlation_id = str(uuid.uuid4())
    if through == "queue":
        sent = body(processing_mode="async", correlation_id=correlation_id)
        headers = {}
    else:  # an immediate call queues nothing; only the key's store writes to Redis
        sent = body(processing_mode="immediate", correlation_id=correlation_id)
        headers = {"Idempotency-Key": f"key-{uuid.uuid4()}"}

    response = await client.post(COMPARISON, json=sent, headers=headers)

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    error = (await response.get_json())["error"]
    assert set(error) == {"code", "message", "correlation_id", "details"}
    assert error["code"] == "QUEUE_MEMORY_FULL"
    assert error["correlation_id"] == correlation_id
    assert "memory" in error["message"]
    assert "127.0.0.1" not in error["message"]


# -- /healthz and the gauge ------------------------------------------------------------------


async def memory_ratio_gauge(client: Any) -> float:
    text = await (await client.get("/metrics")).get_data(as_text=True)
    gauge = "llm_provider_redis_memory_used_ratio "
    [line] = [ln for ln in text.splitlines() if ln.startswith(gauge)]
    return float(line.removeprefix(gauge))


async def test_healthz_shows_redis_memory_pressure(
    start_app: StartApp, own_redis: RedisServer, raw: Redis, prefix: str
):
    client = await start(
        start_app, own_redis, prefix, worker_enabled=False, redis_memory_degraded_ratio=0.5
    )
    calm = await (await client.get("/healthz")).get_json()
    assert calm["dependencies"]["queue"]["status"] == "healthy"

    used = await used_memory(raw)
    await raw.config_set("maxmemory", str(round(used * 1.3)))  # about 77 % used
    pressed = await client.get("/healthz")

    assert pressed.status_code == 200  # still serving
    queue = (await pressed.get_json())["dependencies"]["queue"]
    assert queue["status"] == "degraded"
    assert "maxmemory" in queue["detail"]
    assert 0.5 < await memory_ratio_gauge(client) < 1.0

    await fill_to_oom(raw)
    full = await client.get("/healthz")

    assert full.status_code == 503
    health = await full.get_json()
    assert health["status"] == "unhealthy"
    assert health["dependencies"]["queue"]["status"] == "unhealthy"
    assert "refuses writes" in health["dependencies"]["queue"]["detail"]


# -- the flood -------------------------------------------------------------------------------


async def test_a_flood_of_large_requests_keeps_redis_within_the_result_budget(
    start_app: StartApp, own_redis: RedisServer, raw: Redis, prefix: str
):
    client = await start(
        start_app,
        own_redis,
        prefix,
        queue_result_max_bytes=RESULT_BUDGET,
        queue_result_max_count=10_000,
        worker_concurrency_per_provider=8,
    )
    before = await used_memory(raw)

    ids = []
    for _ in range(FLOOD):
        response = await client.post(COMPARISON, json=body(ESSAY_CHARS, processing_mode="async"))
        assert response.status_code == 202, await response.get_data(as_text=True)
        ids.append((await response.get_json())["queue_id"])

    async def all_ended_and_announced() -> bool:
        owed = await raw.zcard(f"{{{prefix}}}:unannounced")
        waiting = await raw.zcard(f"{{{prefix}}}:expiry")
        running = await raw.zcard(f"{{{prefix}}}:leases")
        return owed == waiting == running == 0  # every id ends into `unannounced` first

    await wait_until(all_ended_and_announced, 120, "every request completed and announced")

    kept = [key async for key in raw.scan_iter(match=f"{{{prefix}}}:req:*", count=1000)]
    stored = 0
    for key in kept:
        fields = cast(dict[str, str], await raw.hgetall(key))
        assert fields["status"] == "completed"
        assert "b" * 1000 not in fields["job"]  # no copy of the essays
        stored += sum(len(name.encode()) + len(value.encode()) for name, value in fields.items())
    assert 0 < len(kept) < FLOOD  # the oldest were trimmed
    assert stored <= RESULT_BUDGET
    assert await raw.get(f"{{{prefix}}}:ended:bytes") == str(stored)
    assert await used_memory(raw) - before <= RESULT_BUDGET + OVERHEAD

    # The newest results are still there to read; the oldest answer 404 like expired ones.
    newest = await client.get(f"/api/v1/status/{ids[-1]}")
    assert (await newest.get_json())["status"] == "completed"
    oldest = await client.get(f"/api/v1/status/{ids[0]}")
    assert oldest.status_code == 404
    assert (await oldest.get_json())["error"]["code"] == "NOT_FOUND"


async def test_announcing_results_still_works_and_frees_memory_when_redis_is_full(
    own_redis: RedisServer, raw: Redis, prefix: str
):
    # Redis lets a script write on at maxmemory once its first write removed something:
    # announced.lua begins with a ZREM, so the relay keeps freeing memory when Redis is full.
    config = QueueSettings(
        max_size=100,
        max_attempts=3,
        lease_seconds=30.0,
        priority_boost_seconds=1.0,
        result_retention_seconds=3600.0,
    )
    queue = RedisRequestQueue(raw, RedisKeys(prefix), config)
    essay = "e" * ESSAY_CHARS
    job = make_job(request=make_request(essay_a=essay, essay_b=essay))
    await queue.enqueue(job, priority=5, ttl_seconds=3600)
    [lease] = await queue.claim(job.provider, limit=1, owner="w")
    assert await queue.complete(lease, make_result(job))
    record_key = RedisKeys(prefix).request(str(job.request_id))
    await fill_to_oom(raw)
    full = await raw.memory_usage(record_key, samples=0)
    assert full is not None

    await queue.mark_announced(job.request_id)  # the relay's step, at maxmemory

    assert await raw.zcard(f"{{{prefix}}}:unannounced") == 0
    record = await queue.get(job.request_id)
    assert record is not None
    assert record.job.request.essay_a is None
    after = await raw.memory_usage(record_key, samples=0)
    assert after is not None
    assert after < full - 2 * ESSAY_CHARS
