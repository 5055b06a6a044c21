"""Where requests, results and shared counters are kept: this process's memory, or Redis."""

from collections.abc import AsyncIterator
from typing import Any, ClassVar, Literal, NamedTuple

from dishka import Provider, Scope, alias, provide
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from services.llm_provider_service.cache.memory import InMemoryResponseCache
from services.llm_provider_service.di.from_signature import provide_class, without_seams
from services.llm_provider_service.drain_rate import InMemoryDrainRate
from services.llm_provider_service.idempotency.memory import InMemoryIdempotencyStore
from services.llm_provider_service.outbox.memory import InMemoryResultOutbox
from services.llm_provider_service.position_bias.memory import InMemoryPositionBiasStore
from services.llm_provider_service.protocols import (
    DrainRate,
    IdempotencyStore,
    PositionBiasStore,
    RateLimiter,
    RequestQueue,
    ResponseCache,
    ResultOutbox,
)
from services.llm_provider_service.queue.durability import DurabilityWatch
from services.llm_provider_service.queue.memory import InMemoryRequestQueue
from services.llm_provider_service.quotas.memory import InMemoryRateLimiter
from services.llm_provider_service.redis.cache import RedisResponseCache
from services.llm_provider_service.redis.client import RedisClient
from services.llm_provider_service.redis.drain_rate import RedisDrainRate
from services.llm_provider_service.redis.idempotency import RedisIdempotencyStore
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.outbox import RedisResultOutbox
from services.llm_provider_service.redis.position_bias import RedisPositionBiasStore
from services.llm_provider_service.redis.queue import RedisRequestQueue
from services.llm_provider_service.redis.rate_limiter import RedisRateLimiter
from services.llm_provider_service.settings import QueueSettings
from services.llm_provider_service.settings.infrastructure import RedisSettings


class Store(NamedTuple):
    """A port and its two adapters, each built by dishka from its signature."""

    port: Any
    memory: type[Any]
    redis: type[Any]


STORES = [
    Store(IdempotencyStore, InMemoryIdempotencyStore, RedisIdempotencyStore),
    Store(DrainRate, InMemoryDrainRate, RedisDrainRate),
    Store(PositionBiasStore, InMemoryPositionBiasStore, RedisPositionBiasStore),
    Store(RateLimiter, InMemoryRateLimiter, RedisRateLimiter),
]


class StoreDeps(Provider):
    """Binds the port of each of `STORES` to its adapter named by `kept_in`."""

    scope = Scope.APP
    kept_in: ClassVar[Literal["memory", "redis"]]

    def __init__(self) -> None:
        super().__init__()
        for store in STORES:
            self.provide(without_seams(getattr(store, self.kept_in)), provides=store.port)


class InMemoryQueueDeps(StoreDeps):
    """The queue in this process's memory: development and tests, lost on restart."""

    kept_in = "memory"

    response_cache = provide_class(InMemoryResponseCache, provides=ResponseCache)

    @provide
    async def queue(self, section: QueueSettings) -> AsyncIterator[RequestQueue]:
        queue = InMemoryRequestQueue(section)
        yield queue
        await queue.close()  # warns about the accepted requests lost with the process

    @provide
    def durability_watch(self, section: RedisSettings) -> DurabilityWatch:
        return DurabilityWatch(None, section)  # no Redis: nothing to watch

    @provide
    def outbox(self, section: QueueSettings) -> ResultOutbox:
        return InMemoryResultOutbox(retention_seconds=section.result_retention_seconds)


class RedisQueueDeps(StoreDeps):
    """The durable queue in Redis, shared by every replica and worker process."""

    kept_in = "redis"
    queue = provide_class(RedisRequestQueue, provides=RequestQueue)

    @provide
    async def redis(self, section: RedisSettings) -> AsyncIterator[Redis]:
        pool = BlockingConnectionPool.from_url(
            section.url,
            decode_responses=True,
            socket_connect_timeout=section.connect_timeout_seconds,
            socket_timeout=section.socket_timeout_seconds,
            # One immediate retry, on a dropped connection only: after a Redis restart every
            # pooled connection is stale once. No retry on timeouts, so an unreachable Redis
            # still gives 503 within about a second; the worker's own loop retries the rest.
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            health_check_interval=30,
            # A burst (a relay pass, a spike of requests) waits for a free connection rather
            # than failing at once with "Too many connections", as the default pool does.
            max_connections=section.max_connections,
            timeout=section.socket_timeout_seconds,
        )
        client = Redis.from_pool(pool)  # the client owns the pool and closes it
        yield client
        await client.aclose()

    # The adapters ask for a `RedisClient` (a single Redis or a cluster); here it is the one.
    redis_client = alias(source=Redis, provides=RedisClient)

    @provide
    def keys(self, section: QueueSettings) -> RedisKeys:
        return RedisKeys(section.key_prefix)

    @provide
    def durability_watch(self, redis: Redis, section: RedisSettings) -> DurabilityWatch:
        return DurabilityWatch(redis, section)

    @provide
    def response_cache(self, redis: Redis, keys: RedisKeys) -> ResponseCache:
        return RedisResponseCache(redis, keys, InMemoryResponseCache(), ttl_seconds=3600)

    @provide
    def outbox(self, redis: Redis, keys: RedisKeys, section: QueueSettings) -> ResultOutbox:
        return RedisResultOutbox(redis, keys, retention_seconds=section.result_retention_seconds)
