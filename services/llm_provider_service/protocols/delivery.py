"""Ports of event and result delivery: the event publisher and the durable result
outbox."""

from __future__ import annotations

from typing import Any, Protocol
from uuid import UUID

from common_core.api_models import DependencyHealth
from common_core.events import EventEnvelope
from services.llm_provider_service.models import Delivery, OutboxStats


class EventPublisher(Protocol):
    """Where lifecycle and result events go (Kafka in deployment, the log in development)."""

    async def publish(self, topic: str, envelope: EventEnvelope[Any]) -> None:
        """Publish one event, keyed by its `correlation_id`.

        Raises `EventPublishError` when the event could not be handed over; callers decide
        whether that loses anything (observability events) or must be retried (results).
        """
        ...

    def health(self) -> DependencyHealth:
        """Whether events get through now, for `/healthz` (never does I/O)."""
        ...

    async def readiness(self) -> DependencyHealth:
        """For `/readyz`: unhealthy when events cannot be handed over now (the broker cannot
        be reached, or the publisher's breaker is open or it is closed); may do one short
        round trip to the broker, bounded by the send timeout. Never raises."""
        ...


class ResultOutbox(Protocol):
    """Durable result deliveries: kept until their destination acknowledged them.

    Raises `QueueUnavailableError` when its store is unreachable.
    """

    async def add(self, delivery: Delivery) -> bool:
        """Keep `delivery` for sending now; False (and no change) if its id is already here."""
        ...

    async def claim(self, *, limit: int, lease_seconds: float) -> list[Delivery]:
        """Up to `limit` pending deliveries that are due, oldest due first, each hidden from
        other claims for `lease_seconds` and with `attempts` already counting this one."""
        ...

    async def delivered(self, delivery_id: str) -> None:
        """Acknowledged: no longer pending (its state stays readable for a while)."""
        ...

    async def retry(self, delivery_id: str, *, delay_seconds: float, error: str) -> None:
        """Not acknowledged: due again after `delay_seconds`."""
        ...

    async def give_up(self, delivery_id: str, *, error: str) -> None:
        """Never to be sent again (a webhook past its deadline or refused for good)."""
        ...

    async def for_request(self, request_id: UUID) -> list[Delivery]:
        """Every delivery of one request's result, pending or not, for the status endpoint."""
        ...

    async def stats(self) -> OutboxStats: ...
