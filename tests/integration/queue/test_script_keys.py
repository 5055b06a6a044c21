"""Every key a Lua script touches is passed in KEYS, for Redis Cluster: checked with MONITOR
on a real redis-server while every script of every Redis adapter runs.

The one exception (documentation/queue.md, "Redis Cluster"): a record a script learns only
inside itself (an id read from a sorted set, a provider or caller read from a record), named
from the prefix. Those keys must still carry the prefix's hash tag, so they share the slot.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis.asyncio import Redis

from common_core.api_models import ErrorInfo
from common_core.enums import DeliveryChannel, LLMProviderType
from services.llm_provider_service.errors import QuotaExceededError
from services.llm_provider_service.models import IdempotencyEntry
from services.llm_provider_service.redis.drain_rate import RedisDrainRate
from services.llm_provider_service.redis.idempotency import RedisIdempotencyStore
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.outbox import RedisResultOutbox
from services.llm_provider_service.redis.position_bias import RedisPositionBiasStore
from services.llm_provider_service.redis.queue import RedisRequestQueue
from services.llm_provider_service.redis.rate_limiter import RedisRateLimiter
from services.llm_provider_service.settings import QueueSettings
from tests.contract.outbox_contract import make_delivery
from tests.factories import make_job, make_result
from tests.support.redis_queue import ShiftedTime
from tests.support.redis_server import RedisServer

MOCK = LLMProviderType.MOCK
ERROR = ErrorInfo(code="PROVIDER_UNAVAILABLE", message="the vendor answered 503")
# Commands the scripts use whose one key is their first argument; TIME has none.
ONE_KEY = {
    "HSET",
    "HGET",
    "HMGET",
    "HGETALL",
    "HDEL",
    "HINCRBY",
    "HKEYS",
    "HSTRLEN",
    "HEXISTS",
    "HLEN",
    "ZADD",
    "ZREM",
    "ZRANGE",
    "ZRANGEBYSCORE",
    "ZSCORE",
    "ZCARD",
    "ZREMRANGEBYSCORE",
    "ZREMRANGEBYRANK",
    "SADD",
    "SREM",
    "EXISTS",
    "DEL",
    "GET",
    "SET",
    "INCR",
    "INCRBY",
    "DECRBY",
    "LPUSH",
    "LTRIM",
    "RPUSH",
    "LPOP",
    "PEXPIRE",
}
LEARNED = ("req", "ready", "active", "outbox:d", "outbox:req")


@dataclass
class Touched:
    """What the scripts touched: (script's declared KEYS, a command, its key)."""

    declared: list[tuple[frozenset[str], str, str]] = field(default_factory=list)
    scripts: int = 0


@asynccontextmanager
async def watched(server: RedisServer, tag: str) -> AsyncIterator[Touched]:
    """MONITOR while the block runs: each script call of keys under `tag`, then the commands
    it ran (Redis lists a script's commands, as client `lua`, right after its EVALSHA)."""
    touched, sentinel = Touched(), f"done-{tag}"
    monitor_client = Redis.from_url(server.url, decode_responses=True)
    async with monitor_client.monitor() as monitor:
        started, finished = asyncio.Event(), asyncio.Event()

        async def read() -> None:
            current: frozenset[str] | None = None
            started.set()
            async for line in monitor.listen():
                words = line["command"].split(" ")
                if line["client_type"] == "lua":
                    if current is not None and words[0] != "TIME":
                        assert words[0] in ONE_KEY, f"a command this test cannot read: {words}"
                        touched.declared.append((current, words[0], words[1]))
                    continue
                if words[:2] == ["ECHO", sentinel]:
                    finished.set()
                    return
                current = None
                if words[0] == "EVALSHA" and words[3].startswith(tag):
                    current = frozenset(words[3 : 3 + int(words[2])])
                    touched.scripts += 1

        reader = asyncio.create_task(read())
        await started.wait()
        await asyncio.sleep(0.2)  # MONITOR is on before the first command
        try:
            yield touched
        finally:
            client = Redis.from_url(server.url, decode_responses=True)
            await client.echo(sentinel)
            await client.aclose()
            with suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), 5)
            reader.cancel()
            with suppress(asyncio.CancelledError):
                await reader
    await monitor_client.aclose()


async def run_queue_scripts(
    redis: Any, keys: RedisKeys, time: ShiftedTime, build: Callable[..., Any] = RedisRequestQueue
) -> None:
    """Every queue script, through every path that meets a key: a caller at its limit, a
    retry and its promotion, a stale lease, an expiry, a cancel, announcement and trimming,
    the retention purge and the reap's hand-on. `build` makes the queue from `redis`, `keys`
    and the settings (`ShardedRequestQueue` for the cluster's check)."""
    # At most 50 waiting, 2 attempts, 5 s leases, 1 s priority boost, 30 s retention, and one
    # ended record kept, so that announcing trims.
    limits = {"max_size": 50, "max_attempts": 2, "lease_seconds": 5.0, "result_max_count": 1}
    config = QueueSettings.model_validate(
        limits | {"priority_boost_seconds": 1.0, "result_retention_seconds": 30}
    )
    queue = build(redis, keys, config, time_offset_ms=time)
    first = make_job(caller="cj")
    await queue.enqueue(first, priority=0, ttl_seconds=60, caller_limit=1)
    with pytest.raises(QuotaExceededError):
        await queue.enqueue(make_job(caller="cj"), priority=0, ttl_seconds=60, caller_limit=1)
    await queue.enqueue(make_job(), priority=0, ttl_seconds=60, delay_seconds=2)
    await queue.enqueue(make_job(), priority=0, ttl_seconds=3)
    [lease] = await queue.claim(MOCK, limit=1, owner="w")
    await queue.heartbeat(lease)
    await queue.complete(lease, make_result(lease.job))
    [lease] = await queue.claim(MOCK, limit=1, owner="w")
    await queue.release(lease)
    [lease] = await queue.claim(MOCK, limit=1, owner="w")
    await queue.fail(lease, ERROR, retry_in=1)
    waiting = make_job()
    await queue.enqueue(waiting, priority=0, ttl_seconds=60)
    await queue.cancel(waiting.request_id)
    stale = make_job()
    await queue.enqueue(stale, priority=0, ttl_seconds=60)
    await queue.claim(MOCK, limit=10, owner="w")
    time.advance(10)  # the delayed ones are due, the short one expired, the lease is stale
    for lease in await queue.claim(MOCK, limit=10, owner="w"):
        await queue.fail(lease, ERROR, retry_in=None)
    await queue.reap()
    for record in await queue.take_unannounced(limit=50, hide_seconds=5):
        await queue.mark_announced(record.queue_id)
    time.advance(120)
    await queue.reap()


async def run_other_scripts(redis: Redis, keys: RedisKeys, time: ShiftedTime) -> None:
    """Every script of the outbox, idempotency store, rate limiter, drain rate and
    position-bias store, the outbox's purge included."""
    outbox = RedisResultOutbox(redis, keys, retention_seconds=1, time_offset_ms=time)
    kafka, webhook = make_delivery(), make_delivery(channel=DeliveryChannel.WEBHOOK)
    for delivery in (kafka, webhook, kafka):
        await outbox.add(delivery)
    await outbox.claim(limit=10, lease_seconds=5)
    await outbox.retry(kafka.delivery_id, delay_seconds=0, error="down")
    await outbox.delivered(kafka.delivery_id)
    await outbox.give_up(webhook.delivery_id, error="refused")
    time.advance(5)
    await outbox.claim(limit=10, lease_seconds=5)

    store = RedisIdempotencyStore(redis, keys)
    entry = IdempotencyEntry(fingerprint="f", request_id=uuid.uuid4())
    await store.reserve("cj/k", entry, hold_seconds=5)
    await store.reserve("cj/k", entry, hold_seconds=5)
    await store.save("cj/k", entry, keep_seconds=5)
    await store.release("cj/k", entry, fence_seconds=5)

    await RedisRateLimiter(redis, keys, time_offset_ms=time).acquire("cj", 60)
    drain = RedisDrainRate(redis, keys, time_offset_ms=time)
    await drain.record(MOCK, uuid.uuid4())
    await drain.per_second(MOCK)
    await RedisPositionBiasStore(redis, keys).record(MOCK, "m", first_won=True)


def undeclared(touched: Touched, tag: str) -> list[tuple[str, str]]:
    learned = re.compile(rf"^{re.escape(tag)}:({'|'.join(LEARNED)}):")
    return [
        (command, key)
        for declared, command, key in touched.declared
        if key not in declared and not learned.match(key)
    ]


async def test_every_script_receives_every_key_it_touches_as_keys(redis_server: RedisServer):
    keys, time = RedisKeys(f"k{uuid.uuid4().hex[:10]}"), ShiftedTime()
    redis = Redis.from_url(redis_server.url, decode_responses=True)
    try:
        async with watched(redis_server, keys.tag) as touched:
            await run_queue_scripts(redis, keys, time)
            await run_other_scripts(redis, keys, time)
    finally:
        await redis.aclose()

    assert touched.scripts >= 30
    assert len(touched.declared) >= 200
    assert undeclared(touched, keys.tag) == []
    assert all(key.startswith(keys.tag) for _, _, key in touched.declared)  # one slot


async def test_the_check_sees_a_key_a_script_does_not_declare(redis_server: RedisServer):
    keys = RedisKeys(f"k{uuid.uuid4().hex[:10]}")
    redis = Redis.from_url(redis_server.url, decode_responses=True)
    script = redis.register_script("redis.call('SET', ARGV[1] .. ':fence', '1') return 1")
    try:
        async with watched(redis_server, keys.tag) as touched:
            await script(keys=[keys.wake], args=[keys.tag])
    finally:
        await redis.aclose()

    assert undeclared(touched, keys.tag) == [("SET", keys.fence)]
