"""`translated_redis_errors`: every Redis failure of a store becomes `QueueUnavailableError`,
its message naming the store that failed (never the host)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis import exceptions as redis_errors

from services.llm_provider_service.errors import QueueMemoryFullError, QueueUnavailableError

# How long a caller refused because Redis is at its maxmemory is told to wait: memory comes
# back as ended records are trimmed or expire and as the queue drains, not within seconds.
MEMORY_FULL_RETRY_AFTER_SECONDS = 30.0

# What an unreachable Redis raises. A Redis Cluster client raises ConnectionError for a master
# that is down (its connect refused), and, outside the RedisError tree, SlotNotCoveredError
# for a slot no master serves or RedisClusterUnreachableError when no node answers at all.
UNREACHABLE = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.SlotNotCoveredError,
    redis_errors.RedisClusterUnreachableError,
)
# A Redis Cluster client's ClusterError ("TTL exhausted."): it followed MOVED, ASK or TRYAGAIN
# redirects until it gave up, as while slots move (a reshard, a failover). A refusal for now,
# like CLUSTERDOWN; not a ResponseError, so it is named on its own.
_REDIRECTED_TOO_OFTEN = redis_errors.ClusterError


@asynccontextmanager
async def translated_redis_errors(store: str) -> AsyncIterator[None]:
    """Redis failures become `QueueUnavailableError`; nothing else leaks from the adapter.
    An OOM refusal (Redis at its `maxmemory` under `noeviction`) becomes its subclass
    `QueueMemoryFullError` (503 `QUEUE_MEMORY_FULL`), so a caller learns why.

    `store` names the calling store, e.g. "the request queue" or "the idempotency store".
    The message a caller sees names that store but no host, port or Redis reply; the Redis
    error stays the `__cause__`, which the log shows.
    """
    try:
        yield
    except UNREACHABLE as exc:
        raise QueueUnavailableError(
            f"{store} (Redis) is unreachable ({type(exc).__name__})", retry_after=5.0
        ) from exc
    except redis_errors.ResponseError as exc:
        # LOADING, MISCONF (cannot persist), READONLY (failover), OOM (noeviction, full),
        # CLUSTERDOWN and TRYAGAIN (a cluster whose slots are moving or unserved):
        # Redis is there but will not keep our writes now, which is the same to a caller.
        reply = str(exc).split(" ", 1)[0]
        refusal = reply if reply.isupper() else type(exc).__name__
        # redis-py raises OutOfMemoryError for an OOM reply, its message without the "OOM".
        if isinstance(exc, redis_errors.OutOfMemoryError) or refusal == "OOM":
            raise QueueMemoryFullError(
                f"{store} (Redis) is out of memory and refuses new writes (OOM)",
                retry_after=MEMORY_FULL_RETRY_AFTER_SECONDS,
            ) from exc
        raise QueueUnavailableError(
            f"{store} (Redis) refused the operation ({refusal})", retry_after=5.0
        ) from exc
    except _REDIRECTED_TOO_OFTEN as exc:  # after ResponseError: CLUSTERDOWN is both
        raise QueueUnavailableError(
            f"{store} (Redis) refused the operation (ClusterError: slots moving)", retry_after=5.0
        ) from exc
