"""Where requests, results and shared counters are kept: this process's memory, or Redis."""

from collections.abc import AsyncIterator
from typing import Any, ClassVar, Literal, NamedTuple

from dishka import Provider, Scope, provide
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from services.llm_provider_service.batch.lane_queue import BatchQueue, batch_lane_config
from services.llm_provider_service.batch.spill_store_memory import InMemorySpillStore
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
    SpillStore,
)
from services.llm_provider_service.queue.durability import DurabilityWatch
from services.llm_provider_service.queue.laned import LanedRequestQueue
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
from services.llm_provider_service.redis.sharded_queue import ShardedRequestQueue
from services.llm_provider_service.redis.spill_store import RedisSpillStore
from services.llm_provider_service.settings import QueueSettings, Settings
from services.llm_provider_service.settings.infrastructure import RedisSettings


class Store(NamedTuple):
    """A port, its two adapters, and the shard of its keys on a Redis Cluster. The memory
    adapter is built by dishka from its signature; the Redis one from `(redis, keys)`."""

    port: Any
    memory: type[Any]
    redis: type[Any]
    shard: str


STORES = [
    # One shard for all idempotency keys rather than one per key hash: each script touches
    # one key's pair (`idem:<hash>` and its fences), so either works, but one shard keeps the
    # adapter as it is, and the store is one small write per keyed request, never hot.
    Store(IdempotencyStore, InMemoryIdempotencyStore, RedisIdempotencyStore, "idem"),
    Store(DrainRate, InMemoryDrainRate, RedisDrainRate, "drain"),
    Store(PositionBiasStore, InMemoryPositionBiasStore, RedisPositionBiasStore, "posbias"),
    Store(RateLimiter, InMemoryRateLimiter, RedisRateLimiter, "rate"),
    Store(SpillStore, InMemorySpillStore, RedisSpillStore, "spill"),
]


def store_keys(keys: RedisKeys, section: RedisSettings, shard: str) -> RedisKeys:
    """A store's keys: on a single Redis today's names (`{prefix}`, shared by every store and
    by a rolling deploy's older version); on a Redis Cluster the store's own slot
    (`{prefix:shard}`), so its scripts stay in one slot and the stores spread over masters."""
    return keys.sharded(shard) if section.cluster else keys


def _redis_store(store: Store) -> Any:
    """A factory of `store.redis` in its shard, for dishka (which reads its annotations)."""

    def build(redis: RedisClient, keys: RedisKeys, section: RedisSettings) -> Any:
        return store.redis(redis, store_keys(keys, section, store.shard))

    build.__annotations__["return"] = store.redis
    return build


class StoreDeps(Provider):
    """Binds the port of each of `STORES` to its adapter named by `kept_in`."""

    scope = Scope.APP
    kept_in: ClassVar[Literal["memory", "redis"]]

    def __init__(self) -> None:
        super().__init__()
        for store in STORES:
            if self.kept_in == "memory":
                self.provide(without_seams(store.memory), provides=store.port)
            else:
                self.provide(_redis_store(store), provides=store.port)


class InMemoryQueueDeps(StoreDeps):
    """The queue in this process's memory: development and tests, lost on restart."""

    kept_in = "memory"

    response_cache = provide_class(InMemoryResponseCache, provides=ResponseCache)

    @provide
    async def queue(self, section: QueueSettings, batch: BatchQueue) -> AsyncIterator[RequestQueue]:
        """Both lanes (`LanedRequestQueue`); the batch lane is `batch_queue`'s."""
        queue = InMemoryRequestQueue(section)
        yield LanedRequestQueue(queue, batch.queue)
        await queue.close()  # warns about the accepted requests lost with the process

    @provide
    async def batch_queue(self, settings: Settings) -> AsyncIterator[BatchQueue]:
        queue = InMemoryRequestQueue(batch_lane_config(settings), batch_lane=True)
        yield BatchQueue(queue)
        await queue.close()

    @provide
    def durability_watch(self, section: RedisSettings) -> DurabilityWatch:
        return DurabilityWatch(None, section)  # no Redis: nothing to watch

    @provide
    def outbox(self, section: QueueSettings) -> ResultOutbox:
        return InMemoryResultOutbox(retention_seconds=section.result_retention_seconds)


class RedisQueueDeps(StoreDeps):
    """The durable queue in Redis, shared by every replica and worker process: one Redis, or
    a Redis Cluster with REDIS_CLUSTER (each store then in a slot of its own)."""

    kept_in = "redis"

    @provide
    def queue(
        self,
        redis: RedisClient,
        keys: RedisKeys,
        redis_section: RedisSettings,
        section: QueueSettings,
        batch: BatchQueue,
    ) -> RequestQueue:
        """One Redis: every queue key under `{prefix}`. A Redis Cluster: the queue sharded per
        provider (`{prefix:<provider>}`), so it spreads over the masters. Beside it, the
        batch lane (`batch_queue`), both behind one `LanedRequestQueue`."""
        if redis_section.cluster:
            return LanedRequestQueue(ShardedRequestQueue(redis, keys, section), batch.queue)
        return LanedRequestQueue(RedisRequestQueue(redis, keys, section), batch.queue)

    @provide
    def batch_queue(
        self, redis: RedisClient, keys: RedisKeys, redis_section: RedisSettings, settings: Settings
    ) -> BatchQueue:
        """The batch lane under `{prefix:batch}` (`RedisKeys.batch_lane`), sharded per
        provider on a Redis Cluster (`{prefix:batch:<provider>}`)."""
        lane, config = keys.batch_lane(), batch_lane_config(settings)
        if redis_section.cluster:
            return BatchQueue(ShardedRequestQueue(redis, lane, config, batch_lane=True))
        return BatchQueue(RedisRequestQueue(redis, lane, config, batch_lane=True))

    @provide
    async def redis(self, section: RedisSettings) -> AsyncIterator[RedisClient]:
        client = cluster_client(section) if section.cluster else single_client(section)
        yield client
        await client.aclose()  # the client owns its pool(s) and closes them

    @provide
    def keys(self, section: QueueSettings) -> RedisKeys:
        return RedisKeys(section.key_prefix)

    @provide
    def durability_watch(self, redis: RedisClient, section: RedisSettings) -> DurabilityWatch:
        return DurabilityWatch(redis, section)

    @provide
    def response_cache(
        self, redis: RedisClient, keys: RedisKeys, section: RedisSettings
    ) -> ResponseCache:
        keys = store_keys(keys, section, "devcache")
        return RedisResponseCache(redis, keys, InMemoryResponseCache(), ttl_seconds=3600)

    @provide
    def outbox(
        self,
        redis: RedisClient,
        keys: RedisKeys,
        redis_section: RedisSettings,
        section: QueueSettings,
    ) -> ResultOutbox:
        keys = store_keys(keys, redis_section, "outbox")
        return RedisResultOutbox(redis, keys, retention_seconds=section.result_retention_seconds)


def single_client(section: RedisSettings) -> Redis:
    """One Redis at REDIS_URL, through a bounded pool that makes a burst wait."""
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
    return Redis.from_pool(pool)  # the client owns the pool and closes it


def cluster_client(section: RedisSettings) -> RedisCluster:
    """A Redis Cluster that REDIS_URL names one node of; the client learns the others and
    routes each command (each script, by its keys' one slot) to the master serving it."""
    return RedisCluster.from_url(
        section.url,
        decode_responses=True,
        socket_connect_timeout=section.connect_timeout_seconds,
        socket_timeout=section.socket_timeout_seconds,
        # One immediate retry (after a topology refresh), as on a single Redis: a pooled
        # connection dropped by a restart is retried once. The cluster client retries a
        # connection error, a timeout, CLUSTERDOWN and an uncovered slot alike, so a
        # master that is down gives 503 after one more refused connect (or timeout), not
        # after the default ten attempts with backoff.
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
        # Per node. Past it the cluster client fails at once (MaxConnectionsError, a 503)
        # instead of waiting for a free connection as the single client's pool does.
        max_connections=section.max_connections,
    )
