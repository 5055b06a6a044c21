"""`/livez` and `/readyz` on real dependencies: liveness asks nothing (no Redis, Kafka or
provider key), readiness is 503 while the queue's Redis or the Kafka broker is down or Redis
refuses writes for memory, and 200 again once they are back. `/healthz` stays as it was."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import Redis

from tests.integration.conftest import StartApp
from tests.support.callers import DEPLOYED_CALLERS
from tests.support.kafka_broker import TansuBroker
from tests.support.redis_server import RedisServer


def persistent(redis_url: str) -> dict[str, Any]:
    return {
        "enable_queue_persistence": True,
        "redis_url": redis_url,
        "queue_key_prefix": f"probe{uuid.uuid4().hex[:10]}",
        "worker_enabled": False,
    }


def with_kafka(broker: TansuBroker) -> dict[str, Any]:
    return {
        "kafka_enabled": True,
        "kafka_bootstrap_servers": broker.bootstrap_servers,
        "kafka_enable_idempotence": False,  # Tansu refuses the idempotent producer
        "kafka_send_timeout_seconds": 1.0,
    }


async def probe(client: Any, path: str) -> tuple[int, dict[str, Any]]:
    response = await client.get(path)
    body: dict[str, Any] = await response.get_json()
    return response.status_code, body


Probe = tuple[int, dict[str, Any]]


async def through_outage(
    client: Any, *, stop: Callable[[], object], start: Callable[[], object]
) -> tuple[Probe, Probe, int, Probe]:
    """/readyz before, during and after a dependency's outage (`stop`, then `start`, even
    when a probe fails), and the /livez status during it."""
    before = await probe(client, "/readyz")
    stop()
    try:
        down = await probe(client, "/readyz")
        live_status, _ = await probe(client, "/livez")
    finally:
        start()
    return before, down, live_status, await probe(client, "/readyz")


async def test_livez_is_200_when_the_default_provider_has_no_key(start_app: StartApp):
    client = await start_app(default_llm_provider="anthropic")

    live_status, live = await probe(client, "/livez")
    ready_status, ready = await probe(client, "/readyz")
    health_status, _ = await probe(client, "/healthz")

    assert live_status == 200
    assert live == {"status": "alive"}
    assert ready_status == 200  # a provider without a key queues requests: still ready
    assert ready["ready"] is True
    assert health_status == 503  # the contract of /healthz is unchanged


async def test_readyz_is_503_while_redis_is_down_and_200_after(
    start_app: StartApp, redis_server: RedisServer
):
    client = await start_app(**persistent(redis_server.url))

    (
        (before_status, before),
        (down_status, down),
        live_status,
        (after_status, after),
    ) = await through_outage(client, stop=redis_server.kill, start=redis_server.start)

    assert before_status == 200
    assert before == {
        "ready": True,
        "checks": {"queue": {"status": "healthy", "detail": "Redis answers and takes writes"}},
    }
    assert down_status == 503
    assert down["ready"] is False
    assert down["checks"]["queue"]["status"] == "unhealthy"
    assert live_status == 200
    assert after_status == 200
    assert after["ready"] is True


async def test_readyz_is_503_while_redis_refuses_writes_for_memory(
    start_app: StartApp, redis_server: RedisServer
):
    client = await start_app(**persistent(redis_server.url))
    raw = Redis.from_url(redis_server.url, decode_responses=True)
    used = int((await raw.info("memory"))["used_memory"])
    original = str((await raw.config_get("maxmemory"))["maxmemory"])
    await raw.config_set("maxmemory", str(used // 2))
    try:
        try:
            await raw.set(f"ballast{uuid.uuid4().hex}", "x")
        except redis_errors.OutOfMemoryError:
            refused = True
        else:
            refused = False
        full_status, full = await probe(client, "/readyz")
    finally:
        await raw.config_set("maxmemory", original)
    after_status, _ = await probe(client, "/readyz")
    await raw.aclose()

    assert refused
    assert full_status == 503
    assert full["checks"]["queue"]["status"] == "unhealthy"
    assert "out of memory" in full["checks"]["queue"]["detail"]
    assert after_status == 200


async def test_readyz_is_503_while_kafka_is_down_and_200_after(
    start_app: StartApp, kafka_broker: TansuBroker, redis_server: RedisServer
):
    client = await start_app(**persistent(redis_server.url), **with_kafka(kafka_broker))

    (
        (before_status, before),
        (down_status, down),
        live_status,
        (after_status, after),
    ) = await through_outage(client, stop=kafka_broker.stop, start=kafka_broker.start)

    assert before_status == 200
    assert before["checks"]["kafka"]["status"] == "healthy"
    assert down_status == 503
    assert down["ready"] is False
    assert down["checks"]["kafka"]["status"] == "unhealthy"
    assert down["checks"]["queue"]["status"] == "healthy"
    assert live_status == 200
    assert after_status == 200
    assert after["checks"]["kafka"]["status"] == "healthy"


async def test_readyz_asks_no_broker_when_kafka_is_off(start_app: StartApp):
    client = await start_app(kafka_enabled=False)

    status, body = await probe(client, "/readyz")

    assert status == 200
    assert set(body["checks"]) == {"queue"}
    assert body["checks"]["queue"]["detail"] == "queue in process memory"


async def test_probes_need_no_key_when_callers_are_configured(start_app: StartApp):
    client = await start_app(callers=DEPLOYED_CALLERS)

    live_status, _ = await probe(client, "/livez")
    ready_status, _ = await probe(client, "/readyz")
    refused = await client.get("/api/v1/providers")

    assert refused.status_code == 401  # the API is closed ...
    assert live_status == 200  # ... the probes are not: they carry no key
    assert ready_status == 200
