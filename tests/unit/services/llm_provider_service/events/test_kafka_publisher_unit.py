"""The Kafka publisher without a broker: configuration, breaker, and what never reaches it.

Where the network is involved, the address is a free loopback port with nothing listening
(a refused connection), so these run anywhere; `tests/integration/events` covers a broker.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from uuid import uuid4

import pytest

from common_core.enums import CircuitBreakerState, LLMProviderType
from common_core.events import EventEnvelope, RequestStartedData
from services.llm_provider_service.errors import EventPublishError
from services.llm_provider_service.events.kafka import KafkaEventPublisher
from services.llm_provider_service.settings import KafkaSettings, Settings
from tests.support.redis_server import free_port

TOPIC = "test.kafka_publisher_unit"
Transitions = list[tuple[str, CircuitBreakerState, CircuitBreakerState]]


def envelope(**metadata: Any) -> EventEnvelope[RequestStartedData]:
    return EventEnvelope[RequestStartedData](
        event_type="request_started",
        correlation_id=uuid4(),
        data=RequestStartedData(request_id=uuid4(), provider=LLMProviderType.MOCK, model="m"),
        metadata=metadata,
    )


@pytest.fixture
def transitions() -> Transitions:
    return []


@pytest.fixture
async def unreachable(transitions: Transitions) -> AsyncIterator[KafkaEventPublisher]:
    """A publisher whose broker refuses connections; threshold 2, reset after 30 s."""
    config = KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{free_port()}",
        enable_idempotence=False,
        send_timeout_seconds=2.0,
        breaker_failure_threshold=2,
        breaker_reset_timeout_seconds=30.0,
    )
    publisher = KafkaEventPublisher(
        config, on_transition=lambda name, old, new: transitions.append((name, old, new))
    )
    yield publisher
    await publisher.close()


def test_config_comes_from_settings(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(
        kafka_bootstrap_servers="kafka-1:9092,kafka-2:9092",
        kafka_client_id="llm-1",
        kafka_enable_idempotence=False,
        kafka_send_timeout_seconds=2.5,
        kafka_breaker_failure_threshold=7,
        kafka_breaker_reset_timeout_seconds=12.0,
    )

    assert settings.kafka == KafkaSettings(
        enabled=False,  # the environment's default, resolved by `Settings`
        bootstrap_servers="kafka-1:9092,kafka-2:9092",
        client_id="llm-1",
        enable_idempotence=False,
        send_timeout_seconds=2.5,
        breaker_failure_threshold=7,
        breaker_reset_timeout_seconds=12.0,
    )


async def test_outages_open_the_breaker_which_then_refuses_at_once(unreachable, transitions):
    for _ in range(2):
        with pytest.raises(EventPublishError) as info:
            await unreachable.publish(TOPIC, envelope())
        assert info.value.details == {"reason": "unavailable", "topic": TOPIC}
    assert unreachable.state is CircuitBreakerState.OPEN
    assert transitions == [("kafka", CircuitBreakerState.CLOSED, CircuitBreakerState.OPEN)]
    assert unreachable.breaker.last_failure_at is not None

    started = time.monotonic()
    with pytest.raises(EventPublishError) as info:
        await unreachable.publish(TOPIC, envelope())
    assert time.monotonic() - started < 1.0
    assert info.value.details == {"reason": "circuit_open"}
    assert info.value.retry_after == pytest.approx(30.0, abs=1.0)
    assert 0 < unreachable.retry_after_seconds() <= 30.0


async def test_an_unserializable_event_is_refused_without_counting(unreachable):
    for _ in range(5):
        with pytest.raises(EventPublishError) as info:
            await unreachable.publish(TOPIC, envelope(handle=object()))
        assert info.value.details["reason"] == "rejected"
    # Had any of these reached for the (unreachable) broker, the breaker would be open.
    assert unreachable.state is CircuitBreakerState.CLOSED


async def test_close_before_any_publish_then_publish_is_refused(unreachable):
    await unreachable.close()
    await unreachable.close()

    with pytest.raises(EventPublishError) as info:
        await unreachable.publish(TOPIC, envelope())
    assert info.value.details == {"reason": "closed"}
    assert unreachable.state is CircuitBreakerState.CLOSED


async def test_topics_get_breakers_of_their_own_up_to_a_bound(unreachable):
    from services.llm_provider_service.events.kafka_breakers import MAX_TOPIC_BREAKERS

    first = unreachable.breaker_for("huleedu.a")
    assert unreachable.breaker_for("huleedu.a") is first
    assert unreachable.breaker_for("huleedu.b") is not first
    names = [f"huleedu.t{i}" for i in range(MAX_TOPIC_BREAKERS + 10)]
    breakers = {unreachable.breaker_for(name).name for name in names}

    assert len(breakers) <= MAX_TOPIC_BREAKERS + 1
    assert unreachable.breaker_for(names[-1]).name == "kafka:*"
    assert unreachable.breaker_for(names[-1]) is unreachable.breaker_for(names[-2])
    assert unreachable.breaker_for("huleedu.a") is first  # the early ones keep their own
