"""An event publisher that writes each event to the log, for development without a broker."""

from __future__ import annotations

import logging
from typing import Any

from common_core.api_models import DependencyHealth
from common_core.enums import HealthStatus
from common_core.events import EventEnvelope

logger = logging.getLogger("llm_provider_service.events")


class LogEventPublisher:
    """Writes every event as one JSON log line; never fails."""

    async def publish(self, topic: str, envelope: EventEnvelope[Any]) -> None:
        if logger.isEnabledFor(logging.INFO):
            logger.info("event topic=%s %s", topic, envelope.model_dump_json())

    def health(self) -> DependencyHealth:
        return DependencyHealth(
            status=HealthStatus.HEALTHY, detail="events are written to the log (no broker)"
        )

    async def readiness(self) -> DependencyHealth:
        return self.health()
