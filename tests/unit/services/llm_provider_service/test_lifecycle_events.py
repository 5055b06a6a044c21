"""LifecycleEvents with its background drain: bounded, never blocking, drained on stop."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from common_core.enums import LLMProviderType
from common_core.events import EventEnvelope, LLMProviderEvent, RequestStartedData
from services.llm_provider_service.lifecycle_events import LifecycleEvents
from services.llm_provider_service.metrics import ServiceMetrics
from tests.fakes import RecordingPublisher

STARTED = LLMProviderEvent.REQUEST_STARTED


class Gated(RecordingPublisher):
    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()

    async def publish(self, topic: str, envelope: EventEnvelope[Any]) -> None:
        self.entered.set()
        await self.gate.wait()
        await super().publish(topic, envelope)


def data() -> RequestStartedData:
    return RequestStartedData(request_id=uuid.uuid4(), provider=LLMProviderType.MOCK, model="m")


def lost(metrics: ServiceMetrics, reason: str) -> float | None:
    return metrics.registry.get_sample_value(
        "llm_provider_events_lost_total", {"event_type": "request_started", "reason": reason}
    )


async def test_a_full_buffer_drops_and_counts_without_blocking() -> None:
    publisher, metrics = Gated(), ServiceMetrics()
    events = LifecycleEvents(publisher, metrics, "huleedu", buffer_size=2)
    stop = asyncio.Event()
    drain = asyncio.create_task(events.run(stop, shutdown_seconds=5.0))
    await asyncio.sleep(0)  # let the drain start

    accepted = [await events.emit(STARTED, uuid.uuid4(), data())]
    await publisher.entered.wait()  # the first is being sent (blocked): the buffer is empty
    accepted += [await events.emit(STARTED, uuid.uuid4(), data()) for _ in range(4)]

    assert accepted == [True, True, True, False, False]
    assert lost(metrics, "buffer_full") == 2.0

    publisher.gate.set()
    stop.set()
    await drain
    assert len(publisher.of_type("request_started")) == 3


async def test_stopping_drains_what_is_buffered_and_counts_what_is_left() -> None:
    publisher, metrics = Gated(), ServiceMetrics()
    events = LifecycleEvents(publisher, metrics, "huleedu", buffer_size=100)
    stop = asyncio.Event()
    drain = asyncio.create_task(events.run(stop, shutdown_seconds=0.2))
    await asyncio.sleep(0)
    for _ in range(3):
        assert await events.emit(STARTED, uuid.uuid4(), data())
    await publisher.entered.wait()

    stop.set()  # the publisher never answers: the drain gives up after its bound
    await drain

    assert publisher.events == []
    assert lost(metrics, "shutdown") == 3.0


async def test_stopping_sends_the_buffered_events_when_the_publisher_answers() -> None:
    publisher, metrics = Gated(), ServiceMetrics()
    events = LifecycleEvents(publisher, metrics, "huleedu", buffer_size=100)
    stop = asyncio.Event()
    drain = asyncio.create_task(events.run(stop, shutdown_seconds=5.0))
    await asyncio.sleep(0)
    for _ in range(3):
        await events.emit(STARTED, uuid.uuid4(), data())
    await publisher.entered.wait()

    stop.set()
    publisher.gate.set()
    await drain

    assert len(publisher.of_type("request_started")) == 3
    assert lost(metrics, "shutdown") is None


async def test_without_a_running_drain_events_are_published_inline() -> None:
    publisher, metrics = RecordingPublisher(), ServiceMetrics()
    events = LifecycleEvents(publisher, metrics, "huleedu")

    assert await events.emit(STARTED, uuid.uuid4(), data())
    assert len(publisher.of_type("request_started")) == 1
