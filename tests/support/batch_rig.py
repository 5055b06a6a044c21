"""`BatchRig`: the batch engine as `di/` wires it, on in-memory parts (or a given queue and
spill store), a `ScriptedBatchAPI` as the mock's Batch API, and one clock for all of it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from common_core.enums import LLMProviderType, QueueStatus
from services.llm_provider_service.batch.context import BatchContext
from services.llm_provider_service.batch.engine import BatchEngine
from services.llm_provider_service.batch.flex import FlexProviders
from services.llm_provider_service.batch.registry import BatchAPIs
from services.llm_provider_service.batch.spill_store_memory import InMemorySpillStore
from services.llm_provider_service.lease_outcomes import LeaseOutcomes
from services.llm_provider_service.models import ComparisonJob, QueueRecord
from services.llm_provider_service.protocols import RequestQueue, SpillStore
from services.llm_provider_service.queue.memory import InMemoryRequestQueue
from services.llm_provider_service.settings import Settings
from tests.factories import FakeClock, make_job
from tests.support.request_path import RequestPath, build_request_path
from tests.support.scripted_batch_api import ScriptedBatchAPI

MOCK = LLMProviderType.MOCK


@dataclass
class BatchRig:
    settings: Settings
    clock: FakeClock
    path: RequestPath
    queue: RequestQueue
    spills: SpillStore
    api: ScriptedBatchAPI
    engine: BatchEngine
    # Called with the seconds of every `step`, to move other clocks along (a Redis queue's).
    also_advance: list[Callable[[float], None]] = field(default_factory=list)

    def restarted(self) -> BatchRig:
        """A new engine (as a new process would build) on the same queue, store and vendor."""
        return BatchRig(
            self.settings,
            self.clock,
            self.path,
            self.queue,
            self.spills,
            self.api,
            engine_on(self.path, self.queue, self.spills, self.api, self.clock, "replica-2"),
            self.also_advance,
        )

    async def enqueue(self, n: int = 1, **job: Any) -> list[ComparisonJob]:
        jobs = [make_job(**job) for _ in range(n)]
        for one in jobs:
            await self.queue.enqueue(one, priority=5, ttl_seconds=24 * 3600)
        return jobs

    async def step(self, seconds: float = 60.0) -> None:
        """Let `seconds` pass, then one engine tick."""
        self.clock.advance(seconds)
        for advance in self.also_advance:
            advance(seconds)
        await self.engine.tick()

    async def submit(self) -> None:
        """Two ticks BATCH_MAX_WAIT_SECONDS (30 in these tests) apart: the first sees the
        requests waiting, the second sends them."""
        await self.step(0)
        await self.step(30)

    async def record(self, queue_id: UUID) -> QueueRecord:
        record = await self.queue.get(queue_id)
        assert record is not None
        return record

    async def statuses(self, jobs: list[ComparisonJob]) -> list[QueueStatus]:
        return [(await self.record(job.request_id)).status for job in jobs]

    def events(self, event_type: str) -> Counter[UUID]:
        """How many events of `event_type` each request got (by request or queue id)."""
        found: Counter[UUID] = Counter()
        for envelope in self.path.publisher.of_type(event_type):
            data = envelope.data
            found[getattr(data, "request_id", None) or data.queue_id] += 1
        return found

    def items(self, outcome: str) -> float:
        value = self.path.metrics.registry.get_sample_value(
            "llm_provider_batch_items_total",
            {"provider": "mock", "model": "scripted-1", "outcome": outcome},
        )
        return value or 0.0

    def jobs_counted(self, status: str) -> float:
        value = self.path.metrics.registry.get_sample_value(
            "llm_provider_batch_api_jobs_total",
            {"provider": "mock", "model": "scripted-1", "status": status},
        )
        return value or 0.0


def engine_on(
    path: RequestPath,
    queue: RequestQueue,
    spills: SpillStore,
    api: ScriptedBatchAPI,
    clock: FakeClock,
    owner: str,
    flex: FlexProviders | None = None,
) -> BatchEngine:
    settings = path.settings
    outcomes = LeaseOutcomes(
        queue=queue,
        events=path.events,
        metrics=path.metrics,
        drain_rate=path.drain_rate,
        settings=settings,
    )
    context = BatchContext(
        queue=queue,
        outcomes=outcomes,
        spills=spills,
        calls=path.calls,
        metrics=path.metrics,
        settings=settings,
        prices=path.prices,
        owner=owner,
        clock=lambda: datetime.fromtimestamp(clock(), UTC),
    )
    return BatchEngine(apis=BatchAPIs({MOCK: api}, settings), context=context, flex=flex)


def build_batch_rig(
    settings: Settings,
    *,
    api: ScriptedBatchAPI | None = None,
    queue: RequestQueue | None = None,
    spills: SpillStore | None = None,
    clock: FakeClock | None = None,
    flex: FlexProviders | None = None,
) -> BatchRig:
    clock = clock or FakeClock()
    memory_queue = InMemoryRequestQueue(settings.queue, clock=clock)
    path = build_request_path(settings, queue=memory_queue)
    queue = queue or memory_queue
    spills = spills or InMemorySpillStore(clock=clock)
    api = api or ScriptedBatchAPI()
    api.clock = lambda: datetime.fromtimestamp(clock(), UTC)
    engine = engine_on(path, queue, spills, api, clock, "replica-1", flex)
    return BatchRig(settings, clock, path, queue, spills, api, engine)
