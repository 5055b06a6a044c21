"""Builds event envelopes and hands them to the publisher, counting what could not be sent.

Observability events are off the request path: while `run` (the background drain) is
running, `emit` only puts the event in a bounded in-process buffer and returns at once, so a
slow or unreachable broker never holds up a request (by up to KAFKA_SEND_TIMEOUT_SECONDS per
event, as when they were sent inline). The drain publishes the buffer in batches: events of
one correlation id in the order they were emitted, different requests concurrently. A full
buffer drops the new event (counted in `llm_provider_events_lost_total{reason="buffer_full"}`
and logged when dropping starts and ends). When `run`'s stop event is set, the drain goes on
for at most `shutdown_seconds` to empty the buffer; what is left then is counted
(`reason="shutdown"`) and logged.

The app and the standalone worker run the drain when events go to Kafka (`KAFKA_ENABLED`).
Without a running drain (the log publisher, which never blocks; tests and tools that build
`ProviderCall`, the orchestrator or the worker directly), `emit` publishes inline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from uuid import UUID

from pydantic import BaseModel

from common_core.events import EventEnvelope, LLMProviderEvent, event_type_name, topic_name
from services.llm_provider_service.errors import EventPublishError
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.protocols import EventPublisher

logger = logging.getLogger(__name__)

DEFAULT_BUFFER_SIZE = 10_000
BATCH_SIZE = 100
"""Most events one drain round takes from the buffer (their requests are sent concurrently)."""

_Queued = tuple[LLMProviderEvent, EventEnvelope[BaseModel]]


class LifecycleEvents:
    """The one place events are named, wrapped and published."""

    def __init__(
        self,
        publisher: EventPublisher,
        metrics: ServiceMetrics,
        topic_prefix: str,
        *,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
    ):
        if buffer_size <= 0:
            raise ValueError("buffer_size must be positive")
        self._publisher = publisher
        self._metrics = metrics
        self._prefix = topic_prefix
        self._buffer_size = buffer_size
        self._buffer: deque[_Queued] = deque()
        self._in_flight: list[_Queued] = []
        self._more = asyncio.Event()
        self._idle = asyncio.Event()  # nothing buffered, nothing being sent
        self._idle.set()
        self._draining = False
        self._dropped = 0  # since dropping started; 0 while not dropping

    def topic(self, event: LLMProviderEvent) -> str:
        return topic_name(event, self._prefix)

    @property
    def buffered(self) -> int:
        """Events waiting in the buffer or being sent."""
        return len(self._buffer) + len(self._in_flight)

    async def emit(self, event: LLMProviderEvent, correlation_id: UUID, data: BaseModel) -> bool:
        """Hand one observability event on; False (counted) if it was dropped or, inline,
        could not be sent. These may be lost; result events never go this way, but through
        the durable outbox (`ResultDeliveries`, `ResultRelay`)."""
        envelope: EventEnvelope[BaseModel] = EventEnvelope(
            event_type=event_type_name(event), correlation_id=correlation_id, data=data
        )
        if not self._draining:
            return await self._publish(event, envelope)
        if len(self._buffer) >= self._buffer_size:
            self._metrics.events_lost.labels(event.value, "buffer_full").inc()
            if not self._dropped:
                logger.warning(
                    "lifecycle event buffer full (%d): dropping events until it drains",
                    self._buffer_size,
                )
            self._dropped += 1
            return False
        self._buffer.append((event, envelope))
        self._idle.clear()
        self._more.set()
        return True

    async def run(self, stop: asyncio.Event, *, shutdown_seconds: float) -> None:
        """Drain the buffer until `stop` is set, then for at most `shutdown_seconds` more."""
        self._draining = True
        drain = asyncio.create_task(self._drain(), name="lifecycle-events")
        try:
            await stop.wait()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(shutdown_seconds):
                    await self._idle.wait()
        finally:
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain
            self._draining = False
            self._give_up_rest()

    def _give_up_rest(self) -> None:
        left = self._in_flight + list(self._buffer)
        self._in_flight, self._buffer = [], deque()
        for event, _ in left:
            self._metrics.events_lost.labels(event.value, "shutdown").inc()
        if left:
            logger.warning("%d lifecycle events not sent before shutdown", len(left))

    async def _drain(self) -> None:
        while True:
            if not self._buffer:
                self._idle.set()
                if self._dropped:
                    logger.info("lifecycle event buffer drained; %d dropped", self._dropped)
                    self._dropped = 0
                self._more.clear()
                await self._more.wait()
                continue
            batch = [self._buffer.popleft() for _ in range(min(BATCH_SIZE, len(self._buffer)))]
            self._in_flight = batch
            by_request: dict[UUID, list[_Queued]] = {}
            for item in batch:
                by_request.setdefault(item[1].correlation_id, []).append(item)
            await asyncio.gather(*(self._publish_in_order(items) for items in by_request.values()))

    async def _publish_in_order(self, items: list[_Queued]) -> None:
        for item in items:
            await self._publish(*item)
            self._in_flight.remove(item)

    async def _publish(self, event: LLMProviderEvent, envelope: EventEnvelope[BaseModel]) -> bool:
        try:
            await self._publisher.publish(self.topic(event), envelope)
        except EventPublishError as exc:
            self._metrics.events_published.labels(event.value, "failed").inc()
            # Counted, not logged at warning: the publisher logs its own outages once each.
            logger.debug(
                "event %s for %s not published: %s", event.value, envelope.correlation_id, exc
            )
            return False
        self._metrics.events_published.labels(event.value, "published").inc()
        return True
