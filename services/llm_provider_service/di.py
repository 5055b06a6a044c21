"""The composition root: which concrete adapter serves each port, per environment.

`ENVIRONMENT_DEPS` is the one table that chooses bindings; `make_container` applies it.
Only this module and `app.py` import concrete adapters.
"""

from __future__ import annotations

import random

from dishka import AsyncContainer, Provider, Scope, from_context, make_async_container, provide

from common_core.enums import CircuitBreakerState, EnvironmentType, LLMProviderType
from services.llm_provider_service.breaker import CircuitBreakers, ProviderCircuitBreaker
from services.llm_provider_service.drain_rate import DrainRate
from services.llm_provider_service.events.log import LogEventPublisher
from services.llm_provider_service.lifecycle_events import LifecycleEvents
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.orchestrator import ComparisonOrchestrator
from services.llm_provider_service.protocols import (
    EventPublisher,
    FaultInjection,
    LLMProvider,
    RequestQueue,
)
from services.llm_provider_service.provider_registry import ProviderRegistry
from services.llm_provider_service.providers.mock import MockProvider, MockProviderConfig
from services.llm_provider_service.queue.config import QueueConfig
from services.llm_provider_service.queue.memory import InMemoryRequestQueue
from services.llm_provider_service.settings import ConfigurationError, Settings
from services.llm_provider_service.worker import QueueWorker


class CoreDeps(Provider):
    """Bindings that are the same in every environment."""

    scope = Scope.APP
    settings = from_context(provides=Settings, scope=Scope.APP)

    @provide
    def metrics(self) -> ServiceMetrics:
        return ServiceMetrics()

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
                    failure_threshold=settings.circuit_breaker_failure_threshold,
                    reset_timeout_seconds=settings.circuit_breaker_reset_timeout_seconds,
                    on_transition=on_transition,
                )
                for provider in LLMProviderType
            }
        )

    @provide
    def drain_rate(self) -> DrainRate:
        return DrainRate()

    @provide
    def events(
        self, publisher: EventPublisher, metrics: ServiceMetrics, settings: Settings
    ) -> LifecycleEvents:
        return LifecycleEvents(publisher, metrics, settings.kafka_topic_prefix)

    @provide
    def orchestrator(
        self,
        registry: ProviderRegistry,
        breakers: CircuitBreakers,
        queue: RequestQueue,
        events: LifecycleEvents,
        metrics: ServiceMetrics,
        drain_rate: DrainRate,
        settings: Settings,
    ) -> ComparisonOrchestrator:
        return ComparisonOrchestrator(
            providers=registry,
            breakers=breakers,
            queue=queue,
            events=events,
            metrics=metrics,
            drain_rate=drain_rate,
            settings=settings,
        )

    @provide
    def worker(
        self,
        queue: RequestQueue,
        orchestrator: ComparisonOrchestrator,
        breakers: CircuitBreakers,
        events: LifecycleEvents,
        metrics: ServiceMetrics,
        drain_rate: DrainRate,
        settings: Settings,
    ) -> QueueWorker:
        return QueueWorker(
            queue=queue,
            orchestrator=orchestrator,
            breakers=breakers,
            events=events,
            metrics=metrics,
            drain_rate=drain_rate,
            settings=settings,
        )


class DevelopmentDeps(Provider):
    """Embedded default: the mock provider, an in-memory queue, events to the log."""

    scope = Scope.APP

    @provide
    def queue(self, settings: Settings) -> RequestQueue:
        if settings.queue_persistence:
            raise ConfigurationError("ENABLE_QUEUE_PERSISTENCE needs the Redis request queue")
        return InMemoryRequestQueue(QueueConfig.from_settings(settings))

    @provide
    def publisher(self) -> EventPublisher:
        return LogEventPublisher()

    @provide
    def mock_provider(self, settings: Settings) -> MockProvider:
        return MockProvider(
            MockProviderConfig.from_settings(settings), random.Random(settings.mock_seed)
        )

    @provide
    def fault_injection(self, mock: MockProvider) -> FaultInjection:
        return mock

    @provide
    def registry(self, settings: Settings, mock: MockProvider) -> ProviderRegistry:
        adapters: dict[LLMProviderType, LLMProvider] = {LLMProviderType.MOCK: mock}
        return ProviderRegistry(adapters, settings)


class TestingDeps(DevelopmentDeps):
    """The embedded default, as the test suite and CI run it."""


class DeployedDeps(Provider):
    """Staging and production: durable queue, Kafka events, real providers only."""

    scope = Scope.APP

    @provide
    def queue(self, settings: Settings) -> RequestQueue:
        raise ConfigurationError(
            "staging and production need the Redis request queue, which this build lacks"
        )

    @provide
    def publisher(self) -> EventPublisher:
        return LogEventPublisher()

    @provide
    def registry(self, settings: Settings) -> ProviderRegistry:
        return ProviderRegistry({}, settings)


ENVIRONMENT_DEPS: dict[EnvironmentType, type[Provider]] = {
    EnvironmentType.DEVELOPMENT: DevelopmentDeps,
    EnvironmentType.TESTING: TestingDeps,
    EnvironmentType.STAGING: DeployedDeps,
    EnvironmentType.PRODUCTION: DeployedDeps,
}


def make_container(settings: Settings, *overrides: Provider) -> AsyncContainer:
    """The app container for `settings.environment`; `overrides` (tests) replace bindings."""
    deps = ENVIRONMENT_DEPS[settings.environment]()
    return make_async_container(CoreDeps(), deps, *overrides, context={Settings: settings})
