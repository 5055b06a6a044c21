"""The Kafka publisher against a real (Tansu) broker: delivery, outage, breaker, recovery."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from uuid import UUID, uuid4

import pytest

from common_core.enums import CircuitBreakerState, LLMProviderType
from common_core.events import EventEnvelope, RequestStartedData
from services.llm_provider_service.errors import EventPublishError
from services.llm_provider_service.events.kafka import KafkaEventPublisher
from services.llm_provider_service.settings import KafkaSettings
from tests.support.kafka_broker import TansuBroker, consume
from tests.support.redis_server import free_port

SEND_TIMEOUT = 1.0
RESET_TIMEOUT = 1.0
THRESHOLD = 2
# Generous: a publish against a dead broker must end near the send timeout, not hang.
OUTAGE_BOUND = SEND_TIMEOUT + 1.5

Transitions = list[tuple[str, CircuitBreakerState, CircuitBreakerState]]
MakePublisher = Callable[..., KafkaEventPublisher]


def envelope() -> EventEnvelope[RequestStartedData]:
    return EventEnvelope[RequestStartedData](
        event_type="request_started",
        correlation_id=uuid4(),
        data=RequestStartedData(request_id=uuid4(), provider=LLMProviderType.MOCK, model="m"),
    )


@pytest.fixture
def broker(kafka_broker: TansuBroker) -> Iterator[TansuBroker]:
    """The session broker, running again after the test whatever the test did to it."""
    if not kafka_broker.running:
        kafka_broker.start()
    yield kafka_broker
    if not kafka_broker.running:
        kafka_broker.start()


@pytest.fixture
def topic() -> str:
    return f"test.kafka_publisher.{uuid4().hex}"


@pytest.fixture
def transitions() -> Transitions:
    return []


@pytest.fixture
async def make_publisher(
    broker: TansuBroker, transitions: Transitions
) -> AsyncIterator[MakePublisher]:
    """Publishers with small timeouts (to the session broker unless told otherwise), closed
    after the test."""
    made: list[KafkaEventPublisher] = []

    def make(bootstrap_servers: str | None = None, **values: object) -> KafkaEventPublisher:
        config = KafkaSettings(
            **{
                "bootstrap_servers": bootstrap_servers or broker.bootstrap_servers,
                "client_id": "test_kafka_publisher",
                "enable_idempotence": False,  # Tansu refuses the idempotent producer
                "send_timeout_seconds": SEND_TIMEOUT,
                "breaker_failure_threshold": THRESHOLD,
                "breaker_reset_timeout_seconds": RESET_TIMEOUT,
                **values,
            }
        )
        publisher = KafkaEventPublisher(
            config, on_transition=lambda name, old, new: transitions.append((name, old, new))
        )
        made.append(publisher)
        return publisher

    yield make
    for publisher in made:
        await publisher.close()


async def read_event(
    broker: TansuBroker, topic: str, event_id: UUID
) -> list[EventEnvelope[RequestStartedData]]:
    """Every record on `topic` whose value is the envelope with `event_id`."""
    records = await consume(broker.bootstrap_servers, topic, count=1, timeout=10.0)
    found = [EventEnvelope[RequestStartedData].model_validate_json(r.value) for r in records]
    return [e for e in found if e.event_id == event_id]


async def timed_failure(
    publisher: KafkaEventPublisher, topic: str
) -> tuple[EventPublishError, float]:
    started = time.monotonic()
    with pytest.raises(EventPublishError) as info:
        await publisher.publish(topic, envelope())
    return info.value, time.monotonic() - started


async def test_published_event_arrives_with_key_and_headers(make_publisher, broker, topic):
    publisher = make_publisher()
    event = envelope()

    await publisher.publish(topic, event)

    records = await consume(broker.bootstrap_servers, topic, count=1, timeout=10.0)
    assert len(records) == 1
    record = records[0]
    assert EventEnvelope[RequestStartedData].model_validate_json(record.value) == event
    assert record.key == str(event.correlation_id).encode()
    assert dict(record.headers) == {
        "event_type": b"request_started",
        "event_id": str(event.event_id).encode(),
    }
    assert publisher.state is CircuitBreakerState.CLOSED


async def test_outage_fails_within_send_timeout_then_breaker_fails_fast(
    make_publisher, broker, topic, transitions
):
    publisher = make_publisher()
    await publisher.publish(topic, envelope())  # the producer is started and connected
    broker.stop()

    for _ in range(THRESHOLD):
        error, elapsed = await timed_failure(publisher, topic)
        assert elapsed < OUTAGE_BOUND
        assert error.details["reason"] != "circuit_open"
    assert publisher.state is CircuitBreakerState.OPEN
    assert transitions == [("kafka", CircuitBreakerState.CLOSED, CircuitBreakerState.OPEN)]
    assert publisher.retry_after_seconds() > 0

    # Open: refused at once, without waiting for the network.
    error, elapsed = await timed_failure(publisher, topic)
    assert error.details["reason"] == "circuit_open"
    assert error.retry_after is not None
    assert error.retry_after > 0
    assert elapsed < SEND_TIMEOUT / 2
    assert publisher.state is CircuitBreakerState.OPEN


async def test_publishing_recovers_after_broker_restart(make_publisher, broker, topic, transitions):
    publisher = make_publisher()
    await publisher.publish(topic, envelope())
    broker.stop()
    for _ in range(THRESHOLD):
        await timed_failure(publisher, topic)
    assert publisher.state is CircuitBreakerState.OPEN

    # Same address; Tansu's memory loses the topic, which a Kafka cluster keeps: re-create it,
    # or a batch still flushing from the dropped producer can collide with the auto-creation.
    broker.restart(topics=[topic])
    # Still open until the reset timeout passes, although the broker is back.
    error, _ = await timed_failure(publisher, topic)
    assert error.details["reason"] == "circuit_open"

    await asyncio.sleep(publisher.retry_after_seconds() + 0.05)
    assert publisher.state is CircuitBreakerState.HALF_OPEN

    event = envelope()
    await publisher.publish(topic, event)  # the probe

    assert publisher.state is CircuitBreakerState.CLOSED
    assert transitions[-2:] == [
        ("kafka", CircuitBreakerState.OPEN, CircuitBreakerState.HALF_OPEN),
        ("kafka", CircuitBreakerState.HALF_OPEN, CircuitBreakerState.CLOSED),
    ]
    assert len(await read_event(broker, topic, event.event_id)) == 1


async def test_a_failure_below_the_threshold_does_not_stop_the_next_publish(
    make_publisher, broker, topic
):
    publisher = make_publisher()
    await publisher.publish(topic, envelope())
    broker.stop()
    await timed_failure(publisher, topic)
    broker.restart(topics=[topic])  # as a Kafka cluster would keep it (see above)

    event = envelope()
    await publisher.publish(topic, event)

    assert publisher.state is CircuitBreakerState.CLOSED
    assert len(await read_event(broker, topic, event.event_id)) == 1


async def test_a_restart_between_two_publishes_goes_unnoticed(make_publisher, broker, topic):
    publisher = make_publisher()
    await publisher.publish(topic, envelope())
    broker.restart(topics=[topic])  # re-created: see tests/support/kafka_broker.py

    event = envelope()
    await publisher.publish(topic, event)

    assert len(await read_event(broker, topic, event.event_id)) == 1


async def test_unreachable_broker_at_first_publish(make_publisher, topic):
    port = free_port()
    publisher = make_publisher(bootstrap_servers=f"127.0.0.1:{port}")

    error, elapsed = await timed_failure(publisher, topic)

    assert error.details["reason"] == "unavailable"
    assert elapsed < OUTAGE_BOUND
    # Status bodies show this message in `deliveries`: the broker's address stays internal.
    assert str(port) not in error.message
    assert "127.0.0.1" not in error.message
    await publisher.close()
    await publisher.close()  # idempotent


async def test_broker_coming_up_after_the_service_started(make_publisher, topic, tmp_path):
    """A broker that is down when the service starts is used once it is up."""
    late = TansuBroker(tmp_path / "late")
    publisher = make_publisher(bootstrap_servers=late.bootstrap_servers)
    await timed_failure(publisher, topic)

    late.start()
    try:
        event = envelope()
        await publisher.publish(topic, event)
        assert len(await read_event(late, topic, event.event_id)) == 1
    finally:
        await publisher.close()
        late.stop()


async def test_a_failed_start_on_a_live_broker_is_cleaned_up(make_publisher, broker, topic):
    """Tansu refuses InitProducerId; the half-started producer must not leak (warnings are
    errors here) and the call reports it."""
    publisher = make_publisher(enable_idempotence=True)

    error, elapsed = await timed_failure(publisher, topic)

    assert error.details["reason"] == "unavailable"
    assert elapsed < OUTAGE_BOUND


async def test_a_topic_the_broker_does_not_know_is_reported_as_unknown_not_an_outage(
    make_publisher, broker, topic, transitions, monkeypatch
):
    """With auto-creation off, the broker answers every metadata request without the topic.
    Tansu auto-creates topics, so the client's view is made to lack this one instead."""
    from aiokafka.cluster import ClusterMetadata

    real = ClusterMetadata.partitions_for_topic
    missing = f"{topic}.missing"

    def partitions_for_topic(self: ClusterMetadata, name: str) -> set[int] | None:
        return None if name == missing else real(self, name)

    monkeypatch.setattr(ClusterMetadata, "partitions_for_topic", partitions_for_topic)
    publisher = make_publisher()

    for _ in range(THRESHOLD + 1):
        with pytest.raises(EventPublishError) as info:
            await publisher.publish(missing, envelope())
        assert info.value.details["reason"] == "unknown_topic"
        assert info.value.details["topic"] == missing

    assert transitions == []  # the broker is up: no outage, the breaker stays closed
    event = envelope()
    await publisher.publish(topic, event)  # other topics still go through
    assert [e.event_id for e in await read_event(broker, topic, event.event_id)] == [event.event_id]


async def test_a_topic_that_times_out_opens_only_its_own_breaker(
    make_publisher, broker, topic, transitions, monkeypatch
):
    """One topic whose sends are never acknowledged (say, its partition leader is gone) must
    not stop the others: each topic has its own breaker."""
    from aiokafka import AIOKafkaProducer

    stuck = f"{topic}.stuck"
    real = AIOKafkaProducer.send_and_wait

    async def send_and_wait(self: AIOKafkaProducer, name: str, *args: object, **kw: object):
        if name == stuck:
            await asyncio.Event().wait()  # never acknowledged
        return await real(self, name, *args, **kw)

    monkeypatch.setattr(AIOKafkaProducer, "send_and_wait", send_and_wait)
    publisher = make_publisher()

    for _ in range(THRESHOLD):
        error, _ = await timed_failure(publisher, stuck)
        assert error.details["reason"] == "timeout"
    error, _ = await timed_failure(publisher, stuck)
    assert error.details["reason"] == "circuit_open"

    event = envelope()
    await publisher.publish(topic, event)  # the healthy topic still goes through
    assert len(await read_event(broker, topic, event.event_id)) == 1

    assert publisher.state is CircuitBreakerState.OPEN  # the worst topic's state
    assert transitions == [("kafka", CircuitBreakerState.CLOSED, CircuitBreakerState.OPEN)]
    health = publisher.health()
    assert health.status.value == "degraded"
    assert health.detail is not None
    assert stuck in health.detail
    # Readiness asks the broker only: one caller's bad topic must not take every replica out
    # of the load balancer (nor keep it out, half-open, with nothing left to publish).
    assert (await publisher.readiness()).status.value == "healthy"

    # Once its open period is over, an acknowledged event elsewhere forgets the idle topic's
    # breaker: health does not stay degraded for a topic nobody publishes to any more.
    await asyncio.sleep(publisher.retry_after_seconds() + 0.05)
    await publisher.publish(topic, envelope())
    assert publisher.health().status.value == "healthy"
    assert publisher.state is CircuitBreakerState.CLOSED
    assert transitions[-1] == ("kafka", CircuitBreakerState.OPEN, CircuitBreakerState.CLOSED)
