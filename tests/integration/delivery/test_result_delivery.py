"""Every outcome reaches its consumer: the app with a real Kafka-compatible broker (Tansu),
a private redis-server and a real webhook receiver.

Each test uses its own topic prefix and queue prefix, so tests sharing the session's broker
and Redis never see each other's events.
"""

from __future__ import annotations

import asyncio
import json
import types
import typing
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from common_core.events import ComparisonResultData, EventEnvelope, LLMProviderEvent, topic_name
from common_core.pass_through import PassThrough
from common_core.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER, verify
from services.llm_provider_service.result_deliveries import result_event_id
from tests.integration.conftest import StartApp
from tests.support.kafka_broker import TansuBroker, consume, create_topics
from tests.support.processes import poll_until
from tests.support.redis_server import RedisServer
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.timeout(90)

SECRET = b"test-webhook-secret-0123456789"
BODY: dict[str, Any] = {
    "user_prompt": "Which essay is better argued?",
    "essay_a": "A careful argument.",
    "essay_b": "A loud assertion.",
}
Results = list[EventEnvelope[ComparisonResultData]]


class Delivery:
    """One app wired to the session's broker and Redis under fresh prefixes."""

    def __init__(self, client: Client, prefix: str, broker: TansuBroker) -> None:
        self.client = client
        self.prefix = prefix
        self.broker = broker

    def topic(self, event: LLMProviderEvent) -> str:
        return topic_name(event, self.prefix)

    @property
    def result_topic(self) -> str:
        return self.topic(LLMProviderEvent.COMPARISON_RESULT)

    async def submit(self, expect: int = 202, **fields: Any) -> dict[str, Any]:
        response = await self.client.post("/api/v1/comparison", json={**BODY, **fields})
        body = await response.get_json()
        assert response.status_code == expect, body
        return body  # type: ignore[no-any-return]

    async def status(self, queue_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/api/v1/status/{queue_id}")
        assert response.status_code == 200
        return await response.get_json()  # type: ignore[no-any-return]

    async def until(
        self, check: Callable[[], Awaitable[bool]], what: str, within: float = 20.0
    ) -> None:
        await poll_until(check, within=within, what=what, interval=0.05)

    async def ended(self, queue_id: str, status: str = "completed") -> dict[str, Any]:
        async def done() -> bool:
            return bool((await self.status(queue_id))["status"] == status)

        await self.until(done, f"{queue_id} {status}")
        return await self.status(queue_id)

    async def delivered(self, queue_id: str, channels: int = 1) -> list[dict[str, Any]]:
        async def done() -> bool:
            deliveries = (await self.status(queue_id))["deliveries"]
            return len(deliveries) == channels and all(d["state"] != "pending" for d in deliveries)

        await self.until(done, f"deliveries of {queue_id}")
        return (await self.status(queue_id))["deliveries"]  # type: ignore[no-any-return]

    async def results(self, topic: str, count: int, within: float = 15.0) -> Results:
        records = await consume(self.broker.bootstrap_servers, topic, count=count, timeout=within)
        return [EventEnvelope[ComparisonResultData].model_validate_json(r.value) for r in records]

    async def metric(self, name: str) -> float:
        text = await (await self.client.get("/metrics")).get_data(as_text=True)
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"{name} not exported")


MakeDelivery = Callable[..., Awaitable[Delivery]]


@pytest.fixture
async def make_delivery(
    start_app: StartApp, kafka_broker: TansuBroker, redis_server: RedisServer
) -> MakeDelivery:
    async def make(**overrides: Any) -> Delivery:
        prefix = f"t{uuid.uuid4().hex[:10]}"
        values: dict[str, Any] = {
            "kafka_enabled": True,
            "kafka_bootstrap_servers": kafka_broker.bootstrap_servers,
            "kafka_enable_idempotence": False,  # Tansu refuses the idempotent producer
            "kafka_send_timeout_seconds": 1.0,
            "kafka_breaker_failure_threshold": 2,
            "kafka_breaker_reset_timeout_seconds": 0.5,
            "kafka_topic_prefix": prefix,
            "callback_topic_allowlist": (f"{prefix}.*",),
            "enable_queue_persistence": True,
            "redis_url": redis_server.url,
            "queue_key_prefix": prefix,
            "outbox_poll_interval_seconds": 0.05,
            "outbox_retry_base_seconds": 0.1,
            "outbox_retry_max_seconds": 0.5,
            "webhook_allowed_hosts": ("127.0.0.1",),
            "webhook_allow_private_addresses": True,
            "webhook_allow_http": True,
            "webhook_signing_secret": SECRET.decode(),
            "webhook_timeout_seconds": 2.0,
            **overrides,
        }
        await create_topics(
            kafka_broker.bootstrap_servers,
            [topic_name(e, prefix) for e in LLMProviderEvent] + [f"{prefix}.cj.results.v1"],
        )
        return Delivery(await start_app(**values), prefix, kafka_broker)

    return make


async def test_an_immediate_result_reaches_the_callers_topic(make_delivery: MakeDelivery):
    rig = await make_delivery()
    topic = f"{rig.prefix}.cj.results.v1"
    correlation_id = str(uuid.uuid4())
    body = await rig.submit(
        200,
        callback_topic=topic,
        correlation_id=correlation_id,
        metadata={"essay_pair": "e1-e2", "batch": 7},
    )

    [envelope] = await rig.results(topic, 1)
    records = await consume(rig.broker.bootstrap_servers, topic, count=1)

    assert records[0].key == correlation_id.encode()
    assert envelope.event_type == "llm_provider.comparison_result.v1"
    assert envelope.source_service == "llm_provider_service"
    assert str(envelope.correlation_id) == correlation_id
    assert envelope.event_id == result_event_id(uuid.UUID(body["request_id"]))
    data = envelope.data
    assert str(data.request_id) == body["request_id"]
    assert data.winner is not None
    assert data.winner.value == body["winner"]
    assert data.error_detail is None
    assert data.request_metadata["essay_pair"] == "e1-e2"
    assert data.request_metadata["batch"] == 7
    assert len(data.request_metadata["prompt_sha256"]) == 64
    # Nothing went to the default topic: the caller named its own.
    assert await rig.results(rig.result_topic, 1, within=1.0) == []


async def test_a_queued_result_reaches_the_default_topic_and_the_status_says_so(
    make_delivery: MakeDelivery,
):
    rig = await make_delivery()
    queued = await rig.submit(processing_mode="async", metadata={"essay_pair": "e3-e4"})
    queue_id = queued["queue_id"]

    [kafka] = await rig.delivered(queue_id)
    [envelope] = await rig.results(rig.result_topic, 1)

    assert (kafka["channel"], kafka["state"]) == ("kafka", "delivered")
    assert kafka["destination"] == rig.result_topic
    assert kafka["delivered_at"] is not None
    assert str(envelope.data.request_id) == queue_id
    assert str(envelope.correlation_id) == queued["correlation_id"]
    assert envelope.data.request_metadata["essay_pair"] == "e3-e4"
    assert envelope.data.winner is not None
    # The event carries what the status result says, the essay order included.
    result = (await rig.status(queue_id))["result"]
    assert envelope.data.winner.value == result["winner"]
    assert envelope.data.presentation_order == result["presentation_order"]
    assert envelope.data.provider_request_id == result["provider_request_id"]
    assert envelope.data.served_from_cache is False


async def test_a_failed_request_publishes_its_error_and_its_failure_event(
    make_delivery: MakeDelivery,
):
    rig = await make_delivery()
    await rig.client.post("/api/v1/dev/mock-fault", json={"error_rate": 1.0, "error_kind": "auth"})
    queued = await rig.submit(processing_mode="async")
    await rig.ended(queued["queue_id"], "failed")

    [envelope] = await rig.results(rig.result_topic, 1)
    failures = await consume(
        rig.broker.bootstrap_servers, rig.topic(LLMProviderEvent.FAILURE), count=1
    )

    assert envelope.data.winner is None
    assert envelope.data.error_detail is not None
    assert envelope.data.error_detail.code == "PROVIDER_AUTH_ERROR"
    assert json.loads(failures[0].value)["data"]["error_code"] == "PROVIDER_AUTH_ERROR"


async def test_an_expired_request_publishes_its_expiry(make_delivery: MakeDelivery):
    rig = await make_delivery(
        circuit_breaker_failure_threshold=2, circuit_breaker_reset_timeout_seconds=60.0
    )
    await rig.client.post("/api/v1/dev/mock-fault", json={"error_rate": 1.0})
    for _ in range(2):  # the outage opens the breaker: nothing is claimed
        await rig.submit(503, processing_mode="immediate")
    queued = await rig.submit(processing_mode="async", ttl_seconds=1)
    await rig.ended(queued["queue_id"], "expired")

    [envelope] = await rig.results(rig.result_topic, 1)
    expired = await consume(
        rig.broker.bootstrap_servers, rig.topic(LLMProviderEvent.REQUEST_EXPIRED), count=1
    )

    assert str(envelope.data.request_id) == queued["queue_id"]
    assert envelope.data.error_detail is not None
    assert envelope.data.error_detail.code == "REQUEST_EXPIRED"
    assert json.loads(expired[0].value)["data"]["queue_id"] == queued["queue_id"]


async def test_results_wait_out_a_broker_outage_and_all_arrive(make_delivery: MakeDelivery):
    rig = await make_delivery()
    broker = rig.broker
    await asyncio.to_thread(broker.stop)
    try:
        ids = [(await rig.submit(processing_mode="async"))["queue_id"] for _ in range(6)]
        for queue_id in ids:
            await rig.ended(queue_id)

        async def all_waiting() -> bool:
            return await rig.metric('llm_provider_outbox_pending{channel="kafka"}') == len(ids)

        async def all_tried() -> bool:  # each has had a failed attempt recorded
            statuses = [await rig.status(q) for q in ids]
            return all(s["deliveries"] and s["deliveries"][0]["last_error"] for s in statuses)

        await rig.until(all_waiting, "every result waiting in the outbox")
        await rig.until(all_tried, "a failed attempt for every result")
        [kafka] = (await rig.status(ids[0]))["deliveries"]
        assert kafka["state"] == "pending"
        assert kafka["attempts"] >= 1
        health = await rig.client.get("/healthz")
        assert health.status_code == 200  # degraded, still serving
        events = (await health.get_json())["dependencies"]["events"]
        assert events["status"] == "degraded"
        assert "circuit breaker" in events["detail"]
    finally:
        await asyncio.to_thread(broker.restart)
    await create_topics(broker.bootstrap_servers, [rig.result_topic])  # in-memory broker

    for queue_id in ids:
        [kafka] = await rig.delivered(queue_id)
        assert kafka["state"] == "delivered"
    results = await rig.results(rig.result_topic, len(ids))

    # At least once: every result arrived; a duplicate would carry the same event_id.
    assert {str(e.data.request_id) for e in results} == set(ids)
    by_request = {str(e.data.request_id): e.event_id for e in results}
    assert all(by_request[q] == result_event_id(uuid.UUID(q)) for q in ids)
    assert await rig.metric('llm_provider_outbox_pending{channel="kafka"}') == 0
    health = await (await rig.client.get("/healthz")).get_json()
    assert health["dependencies"]["events"]["status"] == "healthy"
    assert health["dependencies"]["outbox"]["detail"].startswith("0 result deliveries pending")


async def test_a_topic_outside_the_allow_list_is_refused(make_delivery: MakeDelivery):
    rig = await make_delivery()
    body = await rig.submit(400, callback_topic="payments.ledger.v1")
    assert body["error"]["code"] == "CALLBACK_NOT_ALLOWED"
    assert body["error"]["details"]["field"] == "callback_topic"


async def test_a_webhook_is_signed_and_retried_until_the_receiver_takes_it(
    make_delivery: MakeDelivery,
):
    rig = await make_delivery()
    async with WebhookReceiver() as receiver:
        receiver.fail_next(2, status=500)
        queued = await rig.submit(processing_mode="async", callback_url=receiver.url("/results"))
        await receiver.wait_for(1, timeout=20, successful=True)
        deliveries = await rig.delivered(queued["queue_id"], channels=2)

    attempts = receiver.requests
    assert [r.status for r in attempts] == [500, 500, 200]
    assert all(r.path == "/results" for r in attempts)
    for request in attempts:
        header = request.header(SIGNATURE_HEADER)
        assert header is not None
        assert verify(SECRET, header, request.body)
        assert not verify(b"another-secret-0123456789", header, request.body)
    assert len({r.body for r in attempts}) == 1  # the same event every time
    result = (await rig.status(queued["queue_id"]))["result"]
    data = json.loads(attempts[0].body)["data"]
    assert data["winner"] == result["winner"]
    assert data["presentation_order"] == result["presentation_order"]
    assert {r.header(EVENT_ID_HEADER) for r in attempts} == {
        str(result_event_id(uuid.UUID(queued["queue_id"])))
    }
    envelope = EventEnvelope[ComparisonResultData].model_validate_json(attempts[-1].body)
    assert str(envelope.data.request_id) == queued["queue_id"]
    webhook = next(d for d in deliveries if d["channel"] == "webhook")
    assert (webhook["state"], webhook["attempts"]) == ("delivered", 3)
    assert "500" in webhook["last_error"]
    assert await rig.metric('llm_provider_webhook_deliveries_total{outcome="retry"}') == 2


async def test_a_webhook_the_receiver_refuses_is_given_up_and_shown(
    make_delivery: MakeDelivery,
):
    rig = await make_delivery()
    async with WebhookReceiver() as receiver:
        receiver.respond_next(status=410)
        queued = await rig.submit(processing_mode="async", callback_url=receiver.url())
        deliveries = await rig.delivered(queued["queue_id"], channels=2)

    webhook = next(d for d in deliveries if d["channel"] == "webhook")
    assert webhook["state"] == "failed"
    assert "410" in webhook["last_error"]
    assert len(receiver.requests) == 1  # a refusal is final: no retries


async def test_a_webhook_host_outside_the_allow_list_is_refused(make_delivery: MakeDelivery):
    rig = await make_delivery()
    body = await rig.submit(400, callback_url="https://attacker.example.net/steal")
    assert body["error"]["code"] == "CALLBACK_NOT_ALLOWED"
    assert body["error"]["details"] == {"field": "callback_url", "reason": "host_not_allowed"}


# A value away from the default for each kind of pass-through field; a field of another kind
# fails the test below until it gets one here.
PASS_THROUGH_SAMPLES: dict[type, Any] = {
    dict: {"essay_pair": "e1-e2", "batch": 7, "nested": {"k": [1, None]}},
    str: "rubric-7",
    int: 7,
    float: 0.25,
    bool: True,
}


def pass_through_sample() -> dict[str, Any]:
    """A value for every `PassThrough` field, chosen by its type."""
    sample: dict[str, Any] = {}
    for name, field in PassThrough.model_fields.items():
        kind = field.annotation
        if typing.get_origin(kind) in (typing.Union, types.UnionType):  # X | None: X
            kind = next(k for k in typing.get_args(kind) if k is not type(None))
        kind = typing.get_origin(kind) or kind
        assert kind in PASS_THROUGH_SAMPLES, f"no sample for pass-through field {name} ({kind})"
        sample[name] = PASS_THROUGH_SAMPLES[kind]
    return sample


def carried(in_event: Any, sent: Any) -> bool:
    """The event's value is the sent one; a dict (`metadata`) may hold the service's keys
    (`prompt_sha256`) beside the caller's."""
    if isinstance(sent, dict):
        return isinstance(in_event, dict) and {k: in_event.get(k) for k in sent} == sent
    return bool(in_event == sent)


async def test_every_pass_through_field_reaches_the_body_the_event_and_the_webhook(
    make_delivery: MakeDelivery,
):
    rig = await make_delivery()
    topic = f"{rig.prefix}.cj.results.v1"
    sample = pass_through_sample()
    async with WebhookReceiver() as receiver:
        body = await rig.submit(
            200, callback_topic=topic, callback_url=receiver.url("/results"), **sample
        )
        await receiver.wait_for(1, timeout=20, successful=True)
    [record] = await consume(rig.broker.bootstrap_servers, topic, count=1)
    kafka = json.loads(record.value)["data"]
    webhook = json.loads(receiver.requests[-1].body)["data"]

    for name, sent in sample.items():
        in_event = PassThrough.EVENT_NAMES.get(name, name)
        assert body[name] == sent, name
        assert carried(kafka[in_event], sent), (name, kafka)
        assert carried(webhook[in_event], sent), (name, webhook)
    assert kafka == webhook
