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
    ("exc", "reply"),
    [
        (redis_errors.RedisClusterUnreachableError("Redis Cluster cannot be connected."), None),
        (redis_errors.SlotNotCoveredError('Slot "42" is not covered by the cluster.'), None),
        (redis_errors.ClusterDownError("CLUSTERDOWN The cluster is down"), "CLUSTERDOWN"),
        (redis_errors.TryAgainError("TRYAGAIN Multiple keys request during rehashing"), "TRYAGAIN"),
    ],
)
async def test_a_cluster_outage_is_unavailable(exc: Exception, reply: str | None):
    error = await _raised("the request queue", exc)

    assert type(error) is QueueUnavailableError
    kind = f"refused the operation ({reply})" if reply else f"is unreachable ({type(exc).__name__})"
    assert str(error) == f"the request queue (Redis) {kind}"


async def test_a_cluster_usage_error_is_a_bug_not_an_outage():
    with pytest.raises(redis_errors.RedisClusterException):
        async with translated_redis_errors("the request queue"):
            raise redis_errors.RedisClusterException("Calling pipelined function time is blocked")
