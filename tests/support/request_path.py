"""The request path wired as `di/` wires it, from in-memory parts and a scripted provider."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from common_core.enums import LLMProviderType
from services.llm_provider_service.batch.registry import BatchAPIs
from services.llm_provider_service.breaker import CircuitBreakers, ProviderCircuitBreaker
from services.llm_provider_service.cache.memory import InMemoryResponseCache
from services.llm_provider_service.delivery.webhook_policy import WebhookPolicy
from services.llm_provider_service.drain_rate import InMemoryDrainRate
from services.llm_provider_service.essay_order import Counterbalancer
from services.llm_provider_service.lifecycle_events import LifecycleEvents
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.orchestrator import ComparisonOrchestrator
from services.llm_provider_service.outbox.memory import InMemoryResultOutbox
from services.llm_provider_service.outbox.unsaved import UnsavedDeliveries
from services.llm_provider_service.owed_results import OwedResults
from services.llm_provider_service.position_bias.memory import InMemoryPositionBiasStore
from services.llm_provider_service.provider_call import ProviderCall, SharedCalls
from services.llm_provider_service.provider_registry import ProviderRegistry
from services.llm_provider_service.providers.pricing import PriceTable
from services.llm_provider_service.queue.memory import InMemoryRequestQueue
from services.llm_provider_service.request_rules import RequestRules
from services.llm_provider_service.result_deliveries import ResultDeliveries
from services.llm_provider_service.settings import Settings
from services.llm_provider_service.tracing import default_tracer
from services.llm_provider_service.worker import QueueWorker
from tests.fakes import RecordingPublisher, ScriptedProvider
from tests.support.batch_api import ModelsBatchAPI

MOCK = LLMProviderType.MOCK


def breakers_for(settings: Settings) -> CircuitBreakers:
    """One breaker per provider with the settings' threshold and reset timeout."""
    return CircuitBreakers(
        {
            p: ProviderCircuitBreaker(
                p,
                failure_threshold=settings.providers.circuit_breaker_failure_threshold,
                reset_timeout_seconds=settings.providers.circuit_breaker_reset_timeout_seconds,
            )
            for p in LLMProviderType
        }
    )


@dataclass
class RequestPath:
    """The parts, each the one instance the others share; `orchestrator` and `calls` on top."""

    settings: Settings
    provider: ScriptedProvider
    publisher: RecordingPublisher
    metrics: ServiceMetrics
    queue: InMemoryRequestQueue
    breakers: CircuitBreakers
    cache: InMemoryResponseCache
    outbox: InMemoryResultOutbox
    deliveries: ResultDeliveries
    drain_rate: InMemoryDrainRate
    events: LifecycleEvents
    registry: ProviderRegistry
    counterbalancer: Counterbalancer
    prices: PriceTable
    unsaved: UnsavedDeliveries
    calls: ProviderCall = field(init=False)
    orchestrator: ComparisonOrchestrator = field(init=False)

    def __post_init__(self) -> None:
        self.calls = self.provider_call()
        self.orchestrator = self.orchestrator_with(self.calls)

    def provider_call(
        self, cls: type[ProviderCall] = ProviderCall, *, in_flight: SharedCalls | None = None
    ) -> ProviderCall:
        """A `ProviderCall` (or a subclass) on these parts, with its own registry of
        `deduplication_only` calls in flight unless given one."""
        return cls(
            providers=self.registry,
            breakers=self.breakers,
            events=self.events,
            metrics=self.metrics,
            cache=self.cache,
            counterbalancer=self.counterbalancer,
            prices=self.prices,
            in_flight=in_flight if in_flight is not None else SharedCalls(),
            tracer=default_tracer(),
        )

    def orchestrator_with(self, calls: ProviderCall) -> ComparisonOrchestrator:
        """The orchestrator on these parts, calling through `calls`."""
        settings = self.settings
        return ComparisonOrchestrator(
            rules=RequestRules(
                settings,
                WebhookPolicy(settings.webhooks),
                self.registry,
                BatchAPIs({LLMProviderType.MOCK: ModelsBatchAPI()}, settings),
            ),
            calls=calls,
            results=OwedResults(self.outbox, self.deliveries, self.metrics, self.unsaved),
            counterbalancer=self.counterbalancer,
            queue=self.queue,
            drain_rate=self.drain_rate,
            events=self.events,
            metrics=self.metrics,
            settings=settings,
            tracer=default_tracer(),
        )

    def worker(self, calls: ProviderCall | None = None, **options: Any) -> QueueWorker:
        """A queue worker on these parts, calling through `calls` (else `self.calls`);
        `options` are its own (`owner`, `rng`)."""
        return QueueWorker(
            queue=self.queue,
            calls=calls or self.calls,
            events=self.events,
            metrics=self.metrics,
            drain_rate=self.drain_rate,
            settings=self.settings,
            tracer=default_tracer(),
            **options,
        )


def build_request_path(
    settings: Settings,
    *,
    queue: InMemoryRequestQueue | None = None,
    breakers: CircuitBreakers | None = None,
    prices: PriceTable | None = None,
) -> RequestPath:
    """The request path on in-memory parts, a `ScriptedProvider` as the mock provider."""
    provider = ScriptedProvider()
    publisher = RecordingPublisher()
    metrics = ServiceMetrics()
    return RequestPath(
        settings=settings,
        provider=provider,
        publisher=publisher,
        metrics=metrics,
        queue=queue or InMemoryRequestQueue(settings.queue),
        breakers=breakers or breakers_for(settings),
        cache=InMemoryResponseCache(),
        outbox=InMemoryResultOutbox(retention_seconds=600),
        deliveries=ResultDeliveries(topic_prefix="huleedu", webhook_deadline_seconds=3600),
        drain_rate=InMemoryDrainRate(),
        events=LifecycleEvents(publisher, metrics, "huleedu"),
        registry=ProviderRegistry({MOCK: provider}, settings),
        counterbalancer=Counterbalancer(b"k" * 32, InMemoryPositionBiasStore(), metrics),
        prices=prices or PriceTable(settings.providers.model_prices),
        unsaved=UnsavedDeliveries(max_deliveries=settings.outbox.unsaved_max_deliveries),
    )
