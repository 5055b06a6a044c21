"""`translated_redis_errors`: each Redis failure names the store that failed, never a host."""

from __future__ import annotations

import pytest
from redis import exceptions as redis_errors

from services.llm_provider_service.errors import QueueMemoryFullError, QueueUnavailableError
from services.llm_provider_service.redis.errors import translated_redis_errors


async def _raised(store: str, exc: Exception) -> QueueUnavailableError:
    with pytest.raises(QueueUnavailableError) as caught:
        async with translated_redis_errors(store):
            raise exc
    assert caught.value.__cause__ is exc
    return caught.value


async def test_an_unreachable_redis_names_the_store_and_no_host():
    exc = redis_errors.ConnectionError("Error 111 connecting to 10.0.0.7:6390.")

    error = await _raised("the idempotency store", exc)

    assert type(error) is QueueUnavailableError
    assert str(error) == "the idempotency store (Redis) is unreachable (ConnectionError)"
    assert error.retry_after == 5.0


async def test_a_refusal_names_the_store_and_the_reply_kind_only():
    exc = redis_errors.ResponseError("READONLY You can't write against a read only replica.")

    error = await _raised("the result outbox", exc)

    assert type(error) is QueueUnavailableError
    assert str(error) == "the result outbox (Redis) refused the operation (READONLY)"


async def test_an_oom_refusal_names_the_store_and_is_memory_full():
    exc = redis_errors.OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")

    error = await _raised("the request queue", exc)

    assert type(error) is QueueMemoryFullError
    assert str(error) == "the request queue (Redis) is out of memory and refuses new writes (OOM)"
    assert error.retry_after == 30.0


@pytest.mark.parametrize(
    ("exc", "said"),
    [
        # What a Redis Cluster client raises while a master is down or its slots move.
        (redis_errors.SlotNotCoveredError("Slot 5 is not covered"), "is unreachable"),
        (redis_errors.RedisClusterUnreachableError("no node answered"), "is unreachable"),
        (redis_errors.ClusterDownError("The cluster is down"), "refused the operation"),
        (redis_errors.TryAgainError("TRYAGAIN multiple keys"), "refused the operation"),
        # Too many MOVED/ASK/TRYAGAIN redirects in a row (a reshard, a failover).
        (redis_errors.ClusterError("TTL exhausted."), "refused the operation"),
    ],
    ids=["slot-not-covered", "cluster-unreachable", "clusterdown", "tryagain", "ttl-exhausted"],
)
async def test_a_cluster_that_cannot_serve_is_queue_unavailable(exc: Exception, said: str):
    error = await _raised("the result outbox", exc)

    assert type(error) is QueueUnavailableError
    assert str(error).startswith(f"the result outbox (Redis) {said} (")
    assert error.retry_after == 5.0


async def test_a_cluster_usage_error_is_not_disguised_as_an_outage():
    # A command a cluster pipeline refuses is a bug to see, not a 503 to retry.
    with pytest.raises(redis_errors.RedisClusterException):
        async with translated_redis_errors("the result outbox"):
            raise redis_errors.RedisClusterException("pipelined function time is blocked")
