"""Bindings that are the same in every environment: settings sections and the request path."""

import asyncio
import os
from collections.abc import AsyncIterator, Callable

from dishka import Provider, Scope, from_context, provide
from opentelemetry.trace import Tracer, TracerProvider

from common_core.enums import CircuitBreakerState, LLMProviderType
from services.llm_provider_service.breaker import CircuitBreakers, ProviderCircuitBreaker
from services.llm_provider_service.callers import Callers
from services.llm_provider_service.delivery.webhook import WebhookSender
from services.llm_provider_service.delivery.webhook_policy import WebhookPolicy
from services.llm_provider_service.di.from_signature import provide_class
from services.llm_provider_service.essay_order import Counterbalancer
from services.llm_provider_service.idempotency.guard import IdempotencyGuard
from services.llm_provider_service.lifecycle_events import LifecycleEvents
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.orchestrator import ComparisonOrchestrator
from services.llm_provider_service.outbox.unsaved import UnsavedDeliveries
from services.llm_provider_service.owed_results import OwedResults
from services.llm_provider_service.protocols import (
    EventPublisher,
    IdempotencyStore,
    PositionBiasStore,
    RequestQueue,
)
from services.llm_provider_service.provider_call import ProviderCall, SharedCalls
from services.llm_provider_service.providers.pricing import PriceTable
from services.llm_provider_service.quotas.request_rate import RequestRateQuota
from services.llm_provider_service.redaction import Redactor
from services.llm_provider_service.relay import ResultRelay
from services.llm_provider_service.request_rules import RequestRules
from services.llm_provider_service.result_deliveries import ResultDeliveries
from services.llm_provider_service.settings import Settings
from services.llm_provider_service.settings.infrastructure import (
    KafkaSettings,
    LifecycleEventsSettings,
    OutboxSettings,
    WebhookSettings,
)
from services.llm_provider_service.settings.sections import sections
from services.llm_provider_service.tracing import TRACER_NAME, tracer_provider
from services.llm_provider_service.worker import QueueWorker

# Each section of `Settings` by its attribute name (`queue`: `QueueSettings`, ...): the
# container hands `settings.<name>` to any constructor that asks for that section's type.
SECTIONS = sections(Settings)


def _section_of(name: str) -> Callable[[Settings], object]:
    def section(settings: Settings) -> object:
        return getattr(settings, name)

    return section


class SettingsDeps(Provider):
    """`Settings` from the container's context, and each of its sections in `SECTIONS`."""

    scope = Scope.APP
    settings = from_context(provides=Settings, scope=Scope.APP)

    def __init__(self) -> None:
        super().__init__()
        for name, section in SECTIONS.items():
            self.provide(_section_of(name), provides=section)


class CoreDeps(Provider):
    """Bindings that are the same in every environment; classes whose every parameter is a
    port, a section or another binding here are built from their signatures."""

    scope = Scope.APP

    shared_calls = provide(SharedCalls)  # the `deduplication_only` calls in flight here
    request_rules = provide(RequestRules)
    provider_call = provide(ProviderCall)
    owed_results = provide(OwedResults)
    orchestrator = provide(ComparisonOrchestrator)
    request_rate_quota = provide(RequestRateQuota)
    # Test seams (a registry, a clock, an rng, an owner name) keep their defaults.
    metrics = provide_class(ServiceMetrics)
    relay = provide_class(ResultRelay)
    worker = provide_class(QueueWorker)

    @provide
    async def tracer_provider(self, settings: Settings) -> AsyncIterator[TracerProvider]:
        """The SDK's provider (tracing.py); closing the container flushes what it batched."""
        provider = tracer_provider(settings)
        yield provider
        await asyncio.to_thread(provider.shutdown)  # the exporter's last POST blocks

    @provide
    def webhook_policy(self, section: WebhookSettings) -> WebhookPolicy:
        return WebhookPolicy(section)  # a factory: the class also accepts no section

    @provide
    def tracer(self, provider: TracerProvider) -> Tracer:
        return provider.get_tracer(TRACER_NAME)

    @provide
    def breakers(self, settings: Settings, metrics: ServiceMetrics) -> CircuitBreakers:
        def on_transition(
            provider: LLMProviderType, old: CircuitBreakerState, new: CircuitBreakerState
        ) -> None:
            metrics.breaker_transitions.labels(provider.value, old.value, new.value).inc()
            metrics.set_breaker_state(provider, new)

        return CircuitBreakers(
            {
                provider: ProviderCircuitBreaker(
                    provider,
                    failure_threshold=settings.providers.circuit_breaker_failure_threshold,
                    reset_timeout_seconds=settings.providers.circuit_breaker_reset_timeout_seconds,
                    on_transition=on_transition,
                )
                for provider in LLMProviderType
            }
        )

    @provide
    def events(
        self,
        publisher: EventPublisher,
        metrics: ServiceMetrics,
        kafka: KafkaSettings,
        section: LifecycleEventsSettings,
    ) -> LifecycleEvents:
        return LifecycleEvents(
            publisher, metrics, kafka.topic_prefix, buffer_size=section.buffer_size
        )

    @provide
    def counterbalancer(
        self, settings: Settings, store: PositionBiasStore, metrics: ServiceMetrics
    ) -> Counterbalancer:
        secret = settings.essay_order_secret
        # Without a configured secret, a random key per process: each request's order is
        # decided once on arrival and stored with it, so replicas need not share the key.
        key = secret.get_secret_value().encode() if secret is not None else os.urandom(32)
        return Counterbalancer(key, store, metrics)

    @provide
    def prices(self, settings: Settings) -> PriceTable:
        return PriceTable(settings.providers.model_prices)

    @provide
    def result_deliveries(self, settings: Settings, prices: PriceTable) -> ResultDeliveries:
        return ResultDeliveries(
            topic_prefix=settings.kafka.topic_prefix,
            webhook_deadline_seconds=settings.webhooks.delivery_deadline_seconds,
            prices=prices,
            default_models={
                p: settings.provider_settings(p).default_model for p in LLMProviderType
            },
        )

    @provide
    async def webhooks(
        self, section: WebhookSettings, policy: WebhookPolicy
    ) -> AsyncIterator[WebhookSender | None]:
        """The webhook sender, or None when no host is allowed (callback_url is refused)."""
        secret = section.signing_secret
        if not section.allowed_hosts or secret is None:
            yield None
            return
        sender = WebhookSender(
            None,
            policy,
            secret.get_secret_value().encode(),
            timeout_seconds=section.timeout_seconds,
        )
        yield sender
        await sender.close()

    @provide
    def unsaved_deliveries(self, section: OutboxSettings) -> UnsavedDeliveries:
        """Request-path deliveries held while the outbox cannot be written; one per process,
        shared by the orchestrator (which holds) and the relay (which writes them)."""
        return UnsavedDeliveries(max_deliveries=section.unsaved_max_deliveries)

    @provide
    def callers(self, settings: Settings) -> Callers:
        return Callers(settings.callers)

    @provide
    def redactor(self, settings: Settings) -> Redactor:
        return Redactor(settings.secrets(), secret_digests=settings.caller_key_digests())

    @provide
    async def idempotency_guard(
        self,
        orchestrator: ComparisonOrchestrator,
        store: IdempotencyStore,
        queue: RequestQueue,
        settings: Settings,
    ) -> AsyncIterator[IdempotencyGuard]:
        guard = IdempotencyGuard(orchestrator, store, queue, settings)
        yield guard
        await guard.close()  # before the Redis client it settles keys through is closed
