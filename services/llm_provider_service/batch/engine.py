"""`BatchEngine`: the background loop that turns the batch lane's requests into provider
batches and their rows back into ended requests (`documentation/batch.md`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, defaultdict
from collections.abc import AsyncIterator

from common_core.enums import LLMProviderType
from services.llm_provider_service.batch.context import BatchContext
from services.llm_provider_service.batch.flex import FlexLane, FlexProviders
from services.llm_provider_service.batch.ingest import Ingest
from services.llm_provider_service.batch.leases import SpillLeases, unsettled
from services.llm_provider_service.batch.models import (
    BatchAPIUnavailableError,
    BatchPoll,
    BatchState,
)
from services.llm_provider_service.batch.registry import BatchAPIs
from services.llm_provider_service.batch.submit import Submitter
from services.llm_provider_service.errors import QueueUnavailableError
from services.llm_provider_service.protocols import BatchAPI
from services.llm_provider_service.protocols.batch import SpillRecord, SpillState

logger = logging.getLogger(__name__)

_TERMINAL_STATUS = {
    BatchState.ENDED: "ended",
    BatchState.FAILED: "failed",
    BatchState.EXPIRED: "expired",
    BatchState.CANCELLED: "cancelled",
}


class BatchEngine:
    """One tick (`tick`) does, for the spills this replica holds (`SpillStore.take`): keep
    their entries' leases alive, reconcile SUBMITTING spills, poll SUBMITTED ones (every
    BATCH_POLL_SECONDS, one `poll` per provider) and apply the terminal ones; then fills
    new batches from the batch lane. All that matters after a crash is in the spill store
    and the queue: this object's state is only caches and timers."""

    def __init__(
        self, *, apis: BatchAPIs, context: BatchContext, flex: FlexProviders | None = None
    ) -> None:
        self._apis = apis
        self._c = context
        self._leases = SpillLeases(context)
        self.flex = FlexLane(context, flex or FlexProviders())
        self.submitter = Submitter(context, self._leases, self.flex)
        self._ingest = Ingest(context, self._leases)
        self._polled: dict[str, float] = {}  # spill id -> when last polled (clock seconds)
        self._counted: set[tuple[str, str]] = set()  # (spill id, status) counted as a job
        self.healthy = True

    @property
    def tick_seconds(self) -> float:
        return self._c.tick_seconds

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until `stop` is set. What is in flight stays in the spill store and the
        queue: the next tick of any replica resumes it."""
        logger.info("batch engine %s started", self._c.owner)
        while not stop.is_set():
            try:
                await self.tick()
                self.healthy = True
            except (QueueUnavailableError, BatchAPIUnavailableError) as exc:
                if self.healthy:
                    logger.warning("batch engine keeps retrying: %s", exc)
                self.healthy = False
            except Exception:
                logger.exception("batch engine tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.tick_seconds)
        await self.flex.close()
        logger.info("batch engine %s stopped", self._c.owner)

    async def tick(self) -> None:
        """One pass. A failure of one spill or one provider is logged and leaves the others
        to run; only an unreachable store or vendor ends the pass early (`run` retries)."""
        records = await self._c.spills.open()
        self._count_open(records)
        still_open = {record.spill_id for record in records}
        self._counted = {key for key in self._counted if key[0] in still_open}
        owned = frozenset(r.batch.batch_id for r in records if r.batch is not None)
        due: dict[LLMProviderType, list[SpillRecord]] = defaultdict(list)
        for record in records:
            async with self._isolated(f"spill {record.spill_id}"):
                polled = await self._held(record, owned)
                if polled is not None:
                    due[record.provider].append(polled)
        for provider, group in due.items():
            api = self._apis.get(provider)
            if api is not None:
                async with self._isolated(f"{provider.value} poll"):
                    await self._poll(api, group)
        stats = await self._c.queue.stats()
        for provider, api in self._apis.items():
            async with self._isolated(f"{provider.value} fill"):
                await self.submitter.fill(provider, api, stats.depth.get(provider, 0))

    async def _held(self, record: SpillRecord, owned: frozenset[str]) -> SpillRecord | None:
        """Take `record` for this replica, keep its leases alive, reconcile it if it is
        SUBMITTING; the record when it is due for a poll."""
        api = self._apis.get(record.provider)
        taken = await self._c.spills.take(record.spill_id, self._c.owner, self._c.hold_seconds)
        if api is None or not taken:
            return None
        record = await self._leases.keep_alive(record)
        if record.state is SpillState.SUBMITTING:
            await self.submitter.reconcile(record, api, owned)
            return None
        return record if self._poll_due(record) else None

    @contextlib.asynccontextmanager
    async def _isolated(self, what: str) -> AsyncIterator[None]:
        """Run one spill's or one provider's step: a bug or an odd vendor answer there is
        logged and skips only that step this tick. The store or the vendor being away
        (`QueueUnavailableError`, `BatchAPIUnavailableError`) still ends the tick."""
        try:
            yield
        except (QueueUnavailableError, BatchAPIUnavailableError):
            raise
        except Exception:
            logger.exception("batch engine: %s failed; the rest of the tick goes on", what)

    def _poll_due(self, record: SpillRecord) -> bool:
        if not unsettled(record):
            return True  # every entry dead or applied: close it now
        last = self._polled.get(record.spill_id)
        now = self._c.clock().timestamp()
        return last is None or now - last >= self._c.settings.batch.poll_seconds

    async def _poll(self, api: BatchAPI, records: list[SpillRecord]) -> None:
        batches = [record.batch for record in records if record.batch is not None]
        try:
            polls = await api.poll(batches)
        except BatchAPIUnavailableError as exc:
            logger.warning("%s batches not polled: %s", api.provider.value, exc)
            return
        now = self._c.clock().timestamp()
        for record in records:
            assert record.batch is not None
            poll = polls.get(record.batch.batch_id)
            if poll is None:
                continue  # left out of this answer: next time
            self._polled[record.spill_id] = now
            try:
                async with self._isolated(f"spill {record.spill_id}"):
                    await self._polled_one(api, record, poll)
            except BatchAPIUnavailableError as exc:
                logger.warning("spill %s: the vendor did not answer: %s", record.spill_id, exc)

    async def _polled_one(self, api: BatchAPI, record: SpillRecord, poll: BatchPoll) -> None:
        assert record.batch is not None
        if not unsettled(record):
            if poll.state is BatchState.RUNNING:
                await api.cancel(record.batch)  # every request in it is dead for us
                self._count_job_once(record, "cancelled")
            await self._ingest.close(record, api)
            self._polled.pop(record.spill_id, None)
            return
        if poll.state is BatchState.RUNNING:
            return
        if self._count_job_once(record, _TERMINAL_STATUS[poll.state]):
            took = (self._c.clock() - record.batch.created_at).total_seconds()
            labels = (record.provider.value, record.model)
            self._c.metrics.batch_job_duration.labels(*labels).observe(max(0.0, took))
        if poll.state is BatchState.ENDED:
            await self._ingest.ended(record, api)
        elif poll.state is BatchState.FAILED:
            if poll.retryable:
                self.submitter.pause(record.provider, None)
            await self._ingest.failed(record, poll, api)
        else:
            await self._ingest.not_run(record, api)
        self._polled.pop(record.spill_id, None)

    def _count_job_once(self, record: SpillRecord, status: str) -> bool:
        """Count the job's `status` once per process (a batch polled again while it is being
        cancelled, or applied again after a failed ingest, is not counted twice); True when
        counted now."""
        key = (record.spill_id, status)
        if key in self._counted:
            return False
        self._counted.add(key)
        self._c.count_job(record, status)
        return True

    def _count_open(self, records: list[SpillRecord]) -> None:
        counts = Counter(record.provider for record in records)
        for provider, _ in self._apis.items():
            self._c.metrics.batch_open_jobs.labels(provider.value).set(counts.get(provider, 0))
