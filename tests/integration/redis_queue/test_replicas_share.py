"""What one replica learns, every replica knows: the reaper's findings and the drain rate
live in Redis, so another replica reports and estimates the same (two instances, one Redis)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from redis.asyncio import Redis

from common_core.enums import QueueStatus
from services.llm_provider_service.app import create_app
from services.llm_provider_service.redis.drain_rate import RedisDrainRate
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.settings import QueueSettings, Settings
from tests.factories import make_job
from tests.integration.redis_queue.support import MOCK, wait_until
from tests.support.redis_queue import QueueBuilder
from tests.support.redis_server import RedisServer

COMPARISON = "/api/v1/comparison"


def body(**fields: Any) -> dict[str, Any]:
    return {
        "user_prompt": "Which essay argues its thesis better?",
        "essay_a": "Essay A argues carefully, with evidence.",
        "essay_b": "Essay B asserts loudly, without evidence.",
        **fields,
    }


# -- the reaper's findings ----------------------------------------------------------------------


async def test_what_one_replicas_claim_reaped_is_reported_by_another_replicas_reap(
    builder: QueueBuilder, queue_config: QueueSettings
):
    first, second = builder.build(queue_config), builder.build(queue_config)
    job = make_job()
    await first.enqueue(job, priority=5, ttl_seconds=5)
    builder.time.advance(6)

    assert await first.claim(MOCK, limit=1, owner="replica-1") == []
    report = await second.reap()

    assert [record.queue_id for record in report.expired] == [job.request_id]
    assert report.expired[0].status is QueueStatus.EXPIRED
    assert (await first.reap()).expired == ()  # reported once, by whoever reaped first


async def test_a_lease_expiry_found_by_one_replicas_claim_is_counted_by_another(
    builder: QueueBuilder, queue_config: QueueSettings
):
    first, second = builder.build(queue_config), builder.build(queue_config)
    await first.enqueue(make_job(), priority=5, ttl_seconds=3600)
    await first.enqueue(make_job(), priority=5, ttl_seconds=3600)
    [lease] = await first.claim(MOCK, limit=1, owner="replica-1")
    builder.time.advance(queue_config.lease_seconds + 1)

    reclaimed = await first.claim(MOCK, limit=2, owner="replica-1")
    report = await second.reap()

    assert lease.queue_id in {again.queue_id for again in reclaimed}
    assert report.lease_expiries == 1
    assert (await first.reap()).lease_expiries == 0


# -- the drain rate -----------------------------------------------------------------------------


def drain_rate(redis: Redis, builder: QueueBuilder) -> RedisDrainRate:
    return RedisDrainRate(redis, RedisKeys(builder.prefix), time_offset_ms=builder.time)


async def test_two_replicas_estimate_from_one_shared_drain_rate(
    redis_client: Redis, builder: QueueBuilder
):
    worker, api_only = drain_rate(redis_client, builder), drain_rate(redis_client, builder)
    assert await api_only.estimate_wait(MOCK, 4) is None

    gaps = [20.0, 30.0]
    await worker.record(MOCK, uuid.uuid4())
    for gap in gaps:
        builder.time.advance(gap)
        await worker.record(MOCK, uuid.uuid4())

    rate = len(gaps) / sum(gaps)  # Redis TIME also moves a little between the records
    assert await api_only.estimate_wait(MOCK, 4) == pytest.approx(4 / rate, abs=0.5)
    assert await api_only.estimate_wait(MOCK, 4) == await worker.estimate_wait(MOCK, 4)
    assert await api_only.estimate_wait(MOCK, None) is None


async def test_completions_older_than_the_window_no_longer_count(
    redis_client: Redis, builder: QueueBuilder
):
    rate = drain_rate(redis_client, builder)
    await rate.record(MOCK, uuid.uuid4())
    builder.time.advance(1.0)
    await rate.record(MOCK, uuid.uuid4())
    assert await rate.estimate_wait(MOCK, 1) is not None

    builder.time.advance(301.0)

    assert await rate.estimate_wait(MOCK, 1) is None


async def test_an_api_only_replica_estimates_the_wait_from_what_a_worker_replica_drained(
    make_settings: Any, redis_server: RedisServer
):
    shared = {
        "enable_queue_persistence": True,
        "redis_url": redis_server.url,
        "queue_key_prefix": f"share{uuid.uuid4().hex[:10]}",
    }
    settings: Settings = make_settings(**shared, worker_enabled=True)
    worker_app = create_app(settings).test_app()
    api_app = create_app(make_settings(**shared, worker_enabled=False)).test_app()
    await api_app.startup()
    try:
        await worker_app.startup()
        try:
            worker = worker_app.test_client()
            queued = [
                await (await worker.post(COMPARISON, json=body(processing_mode="async"))).get_json()
                for _ in range(3)
            ]

            async def all_completed() -> bool:
                for item in queued:
                    status = await (await worker.get(item["status_url"])).get_json()
                    if status["status"] != "completed":
                        return False
                return True

            await wait_until(all_completed, 10.0, "the worker replica drained its requests")
        finally:
            await worker_app.shutdown()  # no worker left: what is queued now stays queued

        api = api_app.test_client()
        accepted = await api.post(COMPARISON, json=body(processing_mode="async"))
        answer = await accepted.get_json()
    finally:
        await api_app.shutdown()

    assert accepted.status_code == 202
    assert answer["position_in_queue"] == 1
    assert answer["estimated_wait_seconds"] is not None
    assert answer["estimated_wait_seconds"] >= 0
