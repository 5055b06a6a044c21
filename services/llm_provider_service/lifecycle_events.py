"""Builds event envelopes and hands them to the publisher, counting what could not be sent."""

from __future__ import annotations

import logging
from uuid import UUID

from pydantic import BaseModel

from common_core.events import EventEnvelope, LLMProviderEvent, event_type_name, topic_name
from services.llm_provider_service.errors import EventPublishError
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.protocols import EventPublisher

logger = logging.getLogger(__name__)


class LifecycleEvents:
    """The one place events are named, wrapped and published."""

    def __init__(self, publisher: EventPublisher, metrics: ServiceMetrics, topic_prefix: str):
        self._publisher = publisher
        self._metrics = metrics
        self._prefix = topic_prefix

    def topic(self, event: LLMProviderEvent) -> str:
        return topic_name(event, self._prefix)

    async def emit(self, event: LLMProviderEvent, correlation_id: UUID, data: BaseModel) -> bool:
        """Publish one observability event; returns False (logged and counted) if it could
        not be sent. These may be dropped; result events never go this way, but through
        the durable outbox (`ResultDeliveries`, `ResultRelay`)."""
        envelope: EventEnvelope[BaseModel] = EventEnvelope(
            event_type=event_type_name(event), correlation_id=correlation_id, data=data
        )
        try:
            await self._publisher.publish(self.topic(event), envelope)
        except EventPublishError as exc:
            self._metrics.events_published.labels(event.value, "failed").inc()
            # Counted, not logged at warning: the publisher logs its own outages once each.
            logger.debug("event %s for %s not published: %s", event.value, correlation_id, exc)
            return False
        self._metrics.events_published.labels(event.value, "published").inc()
        return True
