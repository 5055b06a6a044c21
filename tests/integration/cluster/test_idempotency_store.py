"""The idempotency store's tests (reserve, release and its fence, save) on
`RedisIdempotencyStore` on the session's Redis Cluster, its keys in the store's own slot
(`{prefix:idem}`): each script touches a key and its fences, all in that slot."""

from __future__ import annotations

import pytest
from redis.asyncio.cluster import RedisCluster

from services.llm_provider_service.redis.idempotency import RedisIdempotencyStore
from tests.integration.cluster.conftest import ShardKeys

# The store tests of tests/integration/test_idempotency.py, collected here with this
# module's `store` fixture (as the contract suites are, by import).
from tests.integration.test_idempotency import (
    test_a_late_save_does_not_replace_another_requests_reservation,
    test_a_release_leaves_a_finished_entry_alone,
    test_a_release_withdraws_only_its_own_reservation,
    test_a_reservation_that_lands_after_its_release_writes_nothing,
    test_a_save_lands_when_the_key_has_lapsed,
)

__all__ = [
    "test_a_late_save_does_not_replace_another_requests_reservation",
    "test_a_release_leaves_a_finished_entry_alone",
    "test_a_release_withdraws_only_its_own_reservation",
    "test_a_reservation_that_lands_after_its_release_writes_nothing",
    "test_a_save_lands_when_the_key_has_lapsed",
]


@pytest.fixture
def store(cluster_client: RedisCluster, shard_keys: ShardKeys) -> RedisIdempotencyStore:
    return RedisIdempotencyStore(cluster_client, shard_keys("idem"))
