"""The service with REDIS_CLUSTER=true on the session's three-master Redis Cluster: it
starts, serves, reports its health, shards its stores over the masters, checks every
master's durability, and answers 503 (never 500) for what lives on a master that is down."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from common_core.enums import LLMProviderType
from services.llm_provider_service.di.stores import STORES, store_keys
from services.llm_provider_service.errors import QueueUnavailableError
from services.llm_provider_service.queue.durability import durability_problems
from services.llm_provider_service.redis.idempotency import RedisIdempotencyStore
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.settings.infrastructure import RedisSettings
from tests.integration.cluster.conftest import ShardKeys
from tests.integration.conftest import StartApp
from tests.integration.redis_queue.support import wait_until
from tests.support.redis_server import RedisClusterServer

COMPARISON = "/api/v1/comparison"
# The default prefix, so where each store's slot lives is the same in every run.
PREFIX = "llmq"
# Each store's shard, and the queue's: one shard per provider. The app's requests use mock.
QUEUE = [provider.value for provider in LLMProviderType]
SHARDS = [store.shard for store in STORES] + ["outbox", "devcache", *QUEUE]


def body(**fields: Any) -> dict[str, Any]:
    return {
        "user_prompt": "Which essay is better argued?",
        "essay_a": "A careful argument.",
        "essay_b": "A loud assertion.",
        **fields,
    }


def tag_of(shard: str) -> str:
    return store_keys(RedisKeys(PREFIX), RedisSettings(cluster=True), shard).tag


@pytest.fixture
async def cluster_app(start_app: StartApp, redis_cluster: RedisClusterServer):
    return await start_app(
        enable_queue_persistence=True,
        redis_url=redis_cluster.url,
        redis_cluster=True,
        queue_key_prefix=PREFIX,
    )


async def keys_per_master(redis_cluster: RedisClusterServer) -> dict[int, int]:
    counts = {}
    for node in redis_cluster.nodes:
        client = Redis.from_url(node.url, decode_responses=True)
        try:
            counts[node.port] = len([k async for k in client.scan_iter(match=f"{{{PREFIX}:*")])
        finally:
            await client.aclose()
    return counts


async def test_the_app_serves_and_is_healthy_on_a_cluster(
    cluster_app, redis_cluster: RedisClusterServer
):
    answered = await cluster_app.post(COMPARISON, json=body(), headers={"Idempotency-Key": "k1"})
    queued = await cluster_app.post(COMPARISON, json=body(processing_mode="async"))
    assert answered.status_code == 200, await answered.get_data(as_text=True)
    assert queued.status_code == 202, await queued.get_data(as_text=True)
    status_url = (await queued.get_json())["status_url"]

    async def completed() -> bool:
        status = await (await cluster_app.get(status_url)).get_json()
        return bool(status["status"] == "completed")

    await wait_until(completed, 10.0, "the queued request completed by the worker")
    health = await cluster_app.get("/healthz")
    ready = await cluster_app.get("/readyz")

    health_body = await health.get_json()
    assert health.status_code == 200, health_body
    assert health_body["dependencies"]["queue"]["status"] == "healthy"
    assert health_body["dependencies"]["queue_durability"]["status"] == "healthy"
    assert health_body["dependencies"]["outbox"]["status"] == "healthy"
    assert ready.status_code == 200, await ready.get_json()
    # What the app wrote (queue records, the idempotency key, position-bias counts) is
    # spread over more than one master.
    holding = [port for port, n in (await keys_per_master(redis_cluster)).items() if n]
    assert len(holding) > 1


def test_the_stores_spread_over_more_than_one_master(redis_cluster: RedisClusterServer):
    masters = {redis_cluster.master_of(tag_of(shard)).port for shard in SHARDS}

    assert len(masters) > 1
    # On one Redis, every store keeps the one tag it always had.
    single = RedisSettings(cluster=False)
    assert {store_keys(RedisKeys(PREFIX), single, s).tag for s in SHARDS} == {"{llmq}"}


async def test_the_durability_check_reads_every_master(
    redis_cluster: RedisClusterServer, cluster_client: RedisCluster
):
    assert await durability_problems(cluster_client) == []
    node = redis_cluster.nodes[-1]  # not the node REDIS_URL names
    direct = Redis.from_url(node.url, decode_responses=True)
    try:
        await direct.config_set("maxmemory-policy", "allkeys-lru")
        problems = await durability_problems(cluster_client)
    finally:
        await direct.config_set("maxmemory-policy", "noeviction")
        await direct.aclose()

    assert len(problems) == 1
    assert f"127.0.0.1:{node.port}" in problems[0]
    assert "maxmemory-policy allkeys-lru" in problems[0]


async def test_a_killed_master_is_a_503_for_its_stores_and_the_rest_keep_serving(
    cluster_app, redis_cluster: RedisClusterServer, shard_keys: ShardKeys
):
    mock_master = redis_cluster.master_of(tag_of("mock"))
    other_shard = next(
        s for s in SHARDS if redis_cluster.master_of(tag_of(s)).port != mock_master.port
    )
    down = sorted(p for p in QUEUE if redis_cluster.master_of(tag_of(p)).port == mock_master.port)
    client = RedisCluster.from_url(redis_cluster.url, decode_responses=True)
    # A store whose slot is on the killed master.
    idem_here = RedisIdempotencyStore(client, RedisKeys(PREFIX).sharded("mock"))
    try:
        await idem_here.get("caller/warm")  # the client knows the cluster before the kill
        redis_cluster.kill(mock_master)
        try:
            queued = await cluster_app.post(COMPARISON, json=body(processing_mode="async"))
            ready = await cluster_app.get("/readyz")
            health = await cluster_app.get("/healthz")
            with pytest.raises(QueueUnavailableError):
                await idem_here.get("caller/k")
            assert await client.set(f"{tag_of(other_shard)}:probe", "1", px=1000)
        finally:
            redis_cluster.restart(mock_master)
        # Back once the master is: the same client reconnects.
        assert await idem_here.get("caller/k") is None
    finally:
        await client.aclose()

    assert queued.status_code == 503
    assert (await queued.get_json())["error"]["code"] == "QUEUE_UNAVAILABLE"
    # A partial outage: every replica sees it alike, so readiness stays 200 (taking every
    # replica out of rotation would make it total) and names the shards that are down.
    ready_body = await ready.get_json()
    assert ready.status_code == 200, ready_body
    assert ready_body["checks"]["queue"]["detail"] == (
        f"Redis answers and takes writes, but not for the queue shards of {', '.join(down)} "
        "(their master is unreachable; they get 503)"
    )
    assert health.status_code == 200
    assert (await health.get_json())["dependencies"]["queue"]["status"] == "degraded"
    ready_again = await (await cluster_app.get("/readyz")).get_json()
    assert ready_again["checks"]["queue"]["detail"] == "Redis answers and takes writes"
    # The restarted master's script cache is empty: the enqueue script is loaded there again.
    again = await cluster_app.post(COMPARISON, json=body(processing_mode="async"))
    assert again.status_code == 202, await again.get_json()


async def test_a_killed_master_that_holds_no_mock_shard_leaves_mock_requests_queueing(
    cluster_app, redis_cluster: RedisClusterServer
):
    mock_port = redis_cluster.master_of(tag_of("mock")).port
    # The node REDIS_URL names, unless it serves the mock shard: INFO and PING must not
    # depend on it.
    other = next(node for node in redis_cluster.nodes if node.port != mock_port)
    assert (await cluster_app.get("/readyz")).status_code == 200  # the app knows the cluster
    redis_cluster.kill(other)
    try:
        ready = await cluster_app.get("/readyz")
        queued = await cluster_app.post(COMPARISON, json=body(processing_mode="async"))
    finally:
        redis_cluster.restart(other)

    assert ready.status_code == 200, await ready.get_json()
    assert "not for the queue shards of" in (await ready.get_json())["checks"]["queue"]["detail"]
    assert queued.status_code == 202, await queued.get_json()
