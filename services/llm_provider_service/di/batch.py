"""The batch engine and what it is made of: the batch lane's queue and its outcomes, the
spill store (`stores.py`), the Batch APIs (`vendors.py`) and the provider calls."""

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

from dishka import Provider, Scope, provide

from common_core.enums import LLMProviderType
from services.llm_provider_service.batch.context import BatchContext
from services.llm_provider_service.batch.engine import BatchEngine
from services.llm_provider_service.batch.flex import FlexProviders
from services.llm_provider_service.batch.lane_queue import BatchQueue
from services.llm_provider_service.batch.registry import BatchAPIs
from services.llm_provider_service.lease_outcomes import LeaseOutcomes
from services.llm_provider_service.lifecycle_events import LifecycleEvents
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.protocols import DrainRate, LLMProvider, SpillStore
from services.llm_provider_service.provider_call import ProviderCall
from services.llm_provider_service.providers.batch_clients import FLEX_BUILDERS
from services.llm_provider_service.providers.pricing import PriceTable
from services.llm_provider_service.providers.redacting import RedactingProvider
from services.llm_provider_service.redaction import Redactor
from services.llm_provider_service.settings import Settings
from services.llm_provider_service.worker import worker_identity


class BatchDeps(Provider):
    """`BatchEngine`, in every environment; it runs beside the worker (`background.py`)."""

    scope = Scope.APP

    @provide
    def batch_engine(
        self,
        lane: BatchQueue,
        apis: BatchAPIs,
        spills: SpillStore,
        calls: ProviderCall,
        events: LifecycleEvents,
        metrics: ServiceMetrics,
        drain_rate: DrainRate,
        prices: PriceTable,
        settings: Settings,
        flex: FlexProviders,
    ) -> BatchEngine:
        outcomes = LeaseOutcomes(
            queue=lane.queue,
            events=events,
            metrics=metrics,
            drain_rate=drain_rate,
            settings=settings,
        )
        context = BatchContext(
            queue=lane.queue,
            outcomes=outcomes,
            spills=spills,
            calls=calls,
            metrics=metrics,
            settings=settings,
            prices=prices,
            owner=worker_identity(),
            clock=_utc_now,
        )
        return BatchEngine(apis=apis, context=context, flex=flex)

    @provide
    async def flex_providers(
        self, settings: Settings, redactor: Redactor
    ) -> AsyncIterator[FlexProviders]:
        """With BATCH_FLEX_ENABLED, a flex adapter per configured vendor that `FLEX_BUILDERS`
        knows (`providers/batch_clients.py`), redacted like the realtime ones; closed on
        shutdown."""
        adapters: dict[LLMProviderType, LLMProvider] = {}
        closers: list[Callable[[], Awaitable[None]]] = []
        for provider, build in FLEX_BUILDERS.items() if settings.batch.flex_enabled else ():
            config = settings.provider_settings(provider)
            if provider in settings.batch.providers and config.enabled and config.configured:
                adapter, close = build(config, settings)
                adapters[provider] = RedactingProvider(adapter, redactor)
                closers.append(close)
        yield FlexProviders(adapters)
        for close in closers:
            await close()


def _utc_now() -> datetime:
    return datetime.now(UTC)
