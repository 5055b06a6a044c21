"""What the Kafka event publisher needs from `Settings`."""

from __future__ import annotations

from dataclasses import dataclass

from services.llm_provider_service.settings import Settings


@dataclass(frozen=True)
class KafkaPublisherConfig:
    """What the publisher needs from `Settings`; tests build it directly."""

    bootstrap_servers: str
    client_id: str = "llm_provider_service"
    enable_idempotence: bool = True
    send_timeout_seconds: float = 5.0
    breaker_failure_threshold: int = 3
    breaker_reset_timeout_seconds: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaPublisherConfig:
        return cls(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            client_id=settings.kafka_client_id,
            enable_idempotence=settings.kafka_enable_idempotence,
            send_timeout_seconds=settings.kafka_send_timeout_seconds,
            breaker_failure_threshold=settings.kafka_breaker_failure_threshold,
            breaker_reset_timeout_seconds=settings.kafka_breaker_reset_timeout_seconds,
        )

    @property
    def close_timeout_seconds(self) -> float:
        """Bound for stopping a producer: its unsent batches expire after the send timeout."""
        return self.send_timeout_seconds + 1.0
