"""`/healthz`'s outbox entry: degraded once results have waited through several retry rounds."""

from __future__ import annotations

from dataclasses import dataclass

from common_core.enums import DeliveryChannel, HealthStatus
from services.llm_provider_service.api.health import STALE_RETRY_ROUNDS, _outbox_health
from services.llm_provider_service.errors import QueueUnavailableError
from services.llm_provider_service.models import OutboxStats


@dataclass
class StubOutbox:
    result: OutboxStats | Exception

    async def stats(self) -> OutboxStats:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


async def test_fresh_pending_results_are_healthy(make_settings) -> None:
    settings = make_settings(outbox_retry_max_seconds=10.0)
    stats = OutboxStats(pending={DeliveryChannel.KAFKA: 3}, oldest_age_seconds=12.0)
    health = await _outbox_health(StubOutbox(stats), settings)  # type: ignore[arg-type]
    assert health.status is HealthStatus.HEALTHY
    assert health.detail == "3 result deliveries pending, oldest 12s"


async def test_results_stuck_for_several_retry_rounds_are_degraded(make_settings) -> None:
    settings = make_settings(outbox_retry_max_seconds=10.0)
    age = STALE_RETRY_ROUNDS * 10.0 + 1
    stats = OutboxStats(pending={DeliveryChannel.WEBHOOK: 1}, oldest_age_seconds=age)
    health = await _outbox_health(StubOutbox(stats), settings)  # type: ignore[arg-type]
    assert health.status is HealthStatus.DEGRADED


async def test_an_unreachable_outbox_is_degraded(make_settings) -> None:
    outbox = StubOutbox(QueueUnavailableError("redis down"))
    health = await _outbox_health(outbox, make_settings())  # type: ignore[arg-type]
    assert health.status is HealthStatus.DEGRADED
    assert health.detail == "redis down"
