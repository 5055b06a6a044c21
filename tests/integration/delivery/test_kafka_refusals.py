"""Result deliveries the broker refuses for good are given up, not retried forever, and do
not hold up the others: the relay against a real Kafka-compatible broker (Tansu)."""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from common_core.enums import DeliveryChannel, DeliveryState
from common_core.events import ComparisonResultData, EventEnvelope
from services.llm_provider_service.events.kafka import KafkaEventPublisher
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.outbox.memory import InMemoryResultOutbox
from services.llm_provider_service.outbox.unsaved import UnsavedDeliveries
from services.llm_provider_service.queue.memory import InMemoryRequestQueue
from services.llm_provider_service.relay import ResultRelay
from services.llm_provider_service.result_deliveries import ResultDeliveries
from services.llm_provider_service.settings import KafkaSettings, Settings
from services.llm_provider_service.tracing import default_tracer
from tests.factories import make_job, make_request, make_result
from tests.support.kafka_broker import TansuBroker, consume

pytestmark = pytest.mark.timeout(60)

TOO_LARGE = 2 * 1024 * 1024
"""Above the producer's max_request_size (1 MiB by default): the record is refused for good."""


@pytest.fixture
async def publisher(kafka_broker: TansuBroker) -> AsyncIterator[KafkaEventPublisher]:
    if not kafka_broker.running:
        kafka_broker.start()
    made = KafkaEventPublisher(
        KafkaSettings(
            bootstrap_servers=kafka_broker.bootstrap_servers,
            enable_idempotence=False,  # Tansu refuses the idempotent producer
            send_timeout_seconds=5.0,
            breaker_failure_threshold=1,
        )
    )
    yield made
    await made.close()


async def test_an_oversized_record_is_given_up_and_the_others_are_delivered(
    kafka_broker: TansuBroker,
    publisher: KafkaEventPublisher,
    make_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    settings = make_settings(outbox_retry_base_seconds=0.05, outbox_retry_max_seconds=0.05)
    queue = InMemoryRequestQueue(settings.queue)
    outbox = InMemoryResultOutbox(retention_seconds=600)
    metrics = ServiceMetrics()
    relay = ResultRelay(
        queue=queue,
        outbox=outbox,
        publisher=publisher,
        webhooks=None,
        deliveries=ResultDeliveries(topic_prefix=prefix, webhook_deadline_seconds=60),
        metrics=metrics,
        settings=settings,
        rng=random.Random(3),
        unsaved=UnsavedDeliveries(max_deliveries=10_000),
        tracer=default_tracer(),
    )

    async def complete(**request: Any) -> Any:
        job = make_job(request=make_request(**request))
        await queue.enqueue(job, priority=5, ttl_seconds=600)
        [lease] = await queue.claim(job.provider, limit=1, owner="w")
        await queue.complete(lease, make_result(job))
        return job

    huge = await complete(metadata={"blob": "x" * TOO_LARGE})
    small = await complete(metadata={"blob": "fine"})

    with caplog.at_level(logging.ERROR, logger="services.llm_provider_service.relay"):
        await relay.run_once()

    [refused] = await outbox.for_request(huge.request_id)
    [taken] = await outbox.for_request(small.request_id)
    assert refused.channel is DeliveryChannel.KAFKA
    assert (refused.state, refused.attempts) == (DeliveryState.FAILED, 1)
    assert refused.last_error is not None
    assert "refused" in refused.last_error
    assert taken.state is DeliveryState.DELIVERED
    assert publisher.state.value == "closed"  # a refusal is not an outage
    assert await relay.run_once() == 0  # nothing pending: no retry of the refused record
    assert (await outbox.stats()).pending.get(DeliveryChannel.KAFKA, 0) == 0
    lost = metrics.registry.get_sample_value(
        "llm_provider_events_lost_total",
        {"event_type": "comparison_result", "reason": "rejected"},
    )
    assert lost == 1.0
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert str(huge.request_id) in line
    assert refused.destination in line

    records = await consume(kafka_broker.bootstrap_servers, refused.destination, count=2, timeout=5)
    received = [EventEnvelope[ComparisonResultData].model_validate_json(r.value) for r in records]
    assert [e.data.request_id for e in received] == [small.request_id]
