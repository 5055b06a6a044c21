"""`BatchContext`: the parts every step of the batch engine shares, and its bookkeeping of
each entry's outcome."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from common_core.api_models import ComparisonResult
from common_core.enums import LLMProviderType
from services.llm_provider_service.lease_outcomes import LeaseOutcomes
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.protocols import RequestQueue, SpillStore
from services.llm_provider_service.protocols.batch import SpillRecord
from services.llm_provider_service.provider_call import ProviderCall
from services.llm_provider_service.providers.pricing import PriceTable
from services.llm_provider_service.settings import Settings


@dataclass(frozen=True, slots=True)
class BatchContext:
    """The batch lane's queue and its outcomes (`LeaseOutcomes` on that queue), the spill
    store, the provider calls (for events, metrics and results), the settings, the prices
    (for the savings), this
    replica's `owner` name, and the clock (UTC) the engine times everything by."""

    queue: RequestQueue
    outcomes: LeaseOutcomes
    spills: SpillStore
    calls: ProviderCall
    metrics: ServiceMetrics
    settings: Settings
    prices: PriceTable
    owner: str
    clock: Callable[[], datetime]

    @property
    def tick_seconds(self) -> float:
        """How often the engine ticks: min(BATCH_POLL_SECONDS, the fill check, a third of
        the lease), at least 50 ms."""
        batch = self.settings.batch
        fill_check = max(batch.max_wait_seconds, 1.0)
        return max(0.05, min(batch.poll_seconds, fill_check, batch.lease_seconds / 3))

    @property
    def hold_seconds(self) -> float:
        """How long a replica holds a spill (`SpillStore.take`): half the lease, so after
        a crash another replica takes over while the entries' leases are still current."""
        return max(self.settings.batch.lease_seconds / 2, 3 * self.tick_seconds)

    def count_items(self, record: SpillRecord, outcome: str, n: int = 1) -> None:
        """`batch_items_total` for `n` entries of `record` that had `outcome`."""
        if n:
            labels = (record.provider.value, record.model, outcome)
            self.metrics.batch_items.labels(*labels).inc(n)

    def count_savings(self, provider: LLMProviderType, result: ComparisonResult) -> None:
        """`batch_savings_dollars_total`: the realtime price of `result`'s usage minus the
        lane's (its `cost_estimate`)."""
        realtime = self.prices.estimate(result.model, result.token_usage)
        cost = result.cost_estimate
        if realtime is not None and cost is not None and realtime > cost:
            self.metrics.batch_savings.labels(provider.value, result.model).inc(realtime - cost)

    def count_job(self, record: SpillRecord, status: str) -> None:
        """`batch_api_jobs_total` for `record`'s batch reaching `status`."""
        self.metrics.batch_jobs.labels(record.provider.value, record.model, status).inc()
