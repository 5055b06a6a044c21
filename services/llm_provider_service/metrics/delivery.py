"""The delivery floor's metrics: events published and lost, the result outbox, webhooks
and the Kafka publisher's breaker."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from common_core.enums import CircuitBreakerState, DeliveryChannel
from services.llm_provider_service.metrics.provider_calls import BREAKER_VALUE
from services.llm_provider_service.models import OutboxStats


class DeliveryMetrics:
    """The metrics of events and result deliveries."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.events_published = Counter(
            "llm_provider_events_published_total",
            "Events by type and outcome: published, failed (a result is retried; an observability "
            "event is dropped), lost (a request-path result the outbox could not keep).",
            ["event_type", "outcome"],
            registry=r,
        )
        self.events_lost = Counter(
            "llm_provider_events_lost_total",
            "Events given up for good, by type and reason: rejected (the broker refused the "
            "record for good), unknown_topic (the topic stayed unknown), buffer_full and "
            "shutdown (observability events the background buffer dropped or still held).",
            ["event_type", "reason"],
            registry=r,
        )
        self.outbox_pending = Gauge(
            "llm_provider_outbox_pending",
            "Result deliveries waiting in the outbox, by channel (kafka, webhook).",
            ["channel"],
            registry=r,
        )
        self.outbox_unsaved = Gauge(
            "llm_provider_outbox_unsaved",
            "Request-path result deliveries this process holds because the outbox could not "
            "be written; the relay writes them once it can.",
            registry=r,
            multiprocess_mode="livesum",  # each process holds its own
        )
        self.outbox_oldest_age = Gauge(
            "llm_provider_outbox_oldest_age_seconds",
            "Age of the oldest result delivery still waiting in the outbox.",
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "llm_provider_webhook_deliveries_total",
            "Webhook deliveries by outcome: delivered, retry and rejected per attempt; given_up "
            "once per delivery whose deadline passed.",
            ["outcome"],
            registry=r,
        )
        self.kafka_breaker_state = Gauge(
            "llm_provider_kafka_breaker_state",
            "The Kafka publisher's circuit breaker: 0 closed, 1 half-open, 2 open.",
            registry=r,
            multiprocess_mode="livemax",  # one publisher per process: the worst state
        )
        for channel in DeliveryChannel:
            self.outbox_pending.labels(channel.value).set(0)

    def observe_outbox(self, stats: OutboxStats) -> None:
        for channel in DeliveryChannel:
            self.outbox_pending.labels(channel.value).set(stats.pending.get(channel, 0))
        self.outbox_oldest_age.set(max(0.0, stats.oldest_age_seconds or 0.0))

    def set_kafka_breaker_state(self, state: CircuitBreakerState) -> None:
        self.kafka_breaker_state.set(BREAKER_VALUE[state])
