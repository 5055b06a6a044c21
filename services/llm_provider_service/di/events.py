"""Where lifecycle events go: the log (development, tests) or Kafka."""

from collections.abc import AsyncIterator

from dishka import Provider, Scope, provide

from services.llm_provider_service.events.kafka import KafkaEventPublisher
from services.llm_provider_service.events.log import LogEventPublisher
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.protocols import EventPublisher
from services.llm_provider_service.settings import KafkaSettings


class LogEventDeps(Provider):
    """Events written to the log: development and tests without a broker."""

    scope = Scope.APP

    publisher = provide(LogEventPublisher, provides=EventPublisher)


class KafkaEventDeps(Provider):
    """Events to Kafka through aiokafka, behind the publisher's own circuit breaker."""

    scope = Scope.APP

    @provide
    async def publisher(
        self, section: KafkaSettings, metrics: ServiceMetrics
    ) -> AsyncIterator[EventPublisher]:
        publisher = KafkaEventPublisher(
            section,
            on_transition=lambda _name, _old, new: metrics.set_kafka_breaker_state(new),
        )
        yield publisher
        await publisher.close()
