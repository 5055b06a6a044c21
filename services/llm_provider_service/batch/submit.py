"""`Submitter`: claims a provider's batch requests, writes the spill ahead, creates the
provider batch, and reconciles creates whose outcome was unknown."""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta

from common_core.enums import LLMProviderType
from services.llm_provider_service.batch.context import BatchContext
from services.llm_provider_service.batch.flex import FlexLane
from services.llm_provider_service.batch.leases import SpillLeases
from services.llm_provider_service.batch.models import (
    BatchAPIUnavailableError,
    BatchCreateAmbiguousError,
    BatchCreateRefusedError,
    BatchEntry,
    custom_id_of,
)
from services.llm_provider_service.errors import ProviderBadRequestError, QueueUnavailableError
from services.llm_provider_service.models import Lease
from services.llm_provider_service.prompt import render_prompt
from services.llm_provider_service.protocols import BatchAPI
from services.llm_provider_service.protocols.batch import SpillEntry, SpillRecord, SpillState

logger = logging.getLogger(__name__)

# How long submissions to a provider pause after a refused create that names no Retry-After.
REFUSED_PAUSE_SECONDS = 300.0
# How many times a batch whose entries the vendor refused is halved, to send the good ones
# and find the bad ones, before each entry left spends an attempt.
MAX_SPLITS = 4


class Submitter:
    """Fills provider batches from the batch lane (see `fill`) and reconciles ambiguous
    creates (`reconcile`). Every step is written to the spill store before the vendor is
    asked, so a crash at any point leaves a record the next tick (of any replica) resumes."""

    def __init__(self, context: BatchContext, leases: SpillLeases, flex: FlexLane) -> None:
        self._c = context
        self._leases = leases
        self._flex = flex
        self._first_seen: dict[LLMProviderType, datetime] = {}
        self._paused_until: dict[LLMProviderType, datetime] = {}

    def pause(self, provider: LLMProviderType, seconds: float | None) -> None:
        """No new batches for `provider` for `seconds` (the vendor refused, or failed a
        batch for its capacity)."""
        until = self._c.clock() + timedelta(seconds=seconds or REFUSED_PAUSE_SECONDS)
        self._paused_until[provider] = until

    def paused(self, provider: LLMProviderType) -> bool:
        until = self._paused_until.get(provider)
        return until is not None and self._c.clock() < until

    async def fill(self, provider: LLMProviderType, api: BatchAPI, waiting: int) -> None:
        """Claim and submit `provider`'s waiting batch requests once there are enough for a
        full batch (the smaller of the vendor's cap and BATCH_MAX_ITEMS) or the oldest has
        waited BATCH_MAX_WAIT_SECONDS (since this replica first saw it waiting). Where the
        flex lane serves the provider, they go to flex calls first; what flex refused since
        the last tick goes into a batch now."""
        await self._send(provider, api, self._flex.fallbacks(provider))
        now = self._c.clock()
        if waiting <= 0:
            self._first_seen.pop(provider, None)
            return
        if self.paused(provider):
            return
        first = self._first_seen.setdefault(provider, now)
        cap = min(api.caps.max_items, self._c.settings.batch.max_items)
        waited = (now - first).total_seconds()
        if waiting < cap and waited < self._c.settings.batch.max_wait_seconds:
            return
        flex = self._flex.serves(provider)
        limit = min(cap, self._flex.free_slots(provider)) if flex else cap
        if limit <= 0:
            return
        leases = await self._c.queue.claim(provider, limit=limit, owner=self._c.owner)
        self._first_seen.pop(provider, None)
        if flex:
            self._flex.start(provider, leases)
        else:
            await self._send(provider, api, leases)

    async def _send(self, provider: LLMProviderType, api: BatchAPI, leases: list[Lease]) -> None:
        """`leases` in batches, one per model and within the vendor's caps."""
        by_model: dict[str, list[Lease]] = defaultdict(list)
        for lease in leases:
            by_model[api.model_for(lease.job.overrides)].append(lease)
        for model, group in by_model.items():
            for chunk in _chunks(api, group):
                if self.paused(provider):
                    await self._release(chunk)
                    continue
                await self._submit(provider, api, model, chunk)

    async def _submit(
        self,
        provider: LLMProviderType,
        api: BatchAPI,
        model: str,
        leases: list[tuple[Lease, BatchEntry]],
        splits: int = 0,
    ) -> None:
        spill_id = uuid.uuid4().hex
        record = SpillRecord(
            spill_id=spill_id,
            provider=provider,
            model=model,
            state=SpillState.SUBMITTING,
            started_at=self._c.clock(),
            entries=tuple(SpillEntry(x.queue_id, x.token, x.attempt) for x, _ in leases),
        )
        try:
            await self._c.spills.begin(record)
        except QueueUnavailableError as exc:
            logger.warning("spill not recorded, its requests go back: %s", exc)
            await self._release(leases)
            return
        # Held while its create is in flight, so no other replica reconciles it meanwhile.
        await self._c.spills.take(spill_id, self._c.owner, self._c.hold_seconds)
        self._leases.remember(spill_id, [lease for lease, _ in leases])
        for lease, _ in leases:
            await self._c.calls.started(lease.job, model, attempt=lease.attempt, from_queue=True)
        try:
            batch = await api.create(spill_id, model, [entry for _, entry in leases])
        except BatchCreateRefusedError as exc:
            logger.warning("%s refused a batch of %d: %s", provider.value, len(leases), exc)
            self._c.count_job(record, "refused")
            if exc.capacity:  # the vendor's capacity, not the entries: back unspent, pause
                self.pause(provider, exc.retry_after)
                await self._leases.release_unsettled(record, "not_run")
                await self._c.spills.finish(spill_id)
                self._leases.forget(spill_id)
                return
            await self._c.spills.finish(spill_id)  # the entries' leases stay ours
            self._leases.forget(spill_id)
            await self._entries_refused(provider, api, model, leases, exc, splits)
            return
        except BatchCreateAmbiguousError as exc:
            logger.warning("create of spill %s ambiguous, reconciling: %s", spill_id, exc)
            self._c.count_job(record, "ambiguous")
            return
        await self._c.spills.submitted(spill_id, batch)
        self._c.count_job(record, "submitted")
        self._c.metrics.batch_items_per_job.labels(provider.value, model).observe(len(leases))

    async def _entries_refused(
        self,
        provider: LLMProviderType,
        api: BatchAPI,
        model: str,
        leases: list[tuple[Lease, BatchEntry]],
        exc: BatchCreateRefusedError,
        splits: int,
    ) -> None:
        """The vendor refused these entries (a 400, a 413), not its capacity: halve the
        batch and send each half, so that the good entries go and the bad ones are found
        (one bad entry must not hold the provider's lane back). An entry refused alone
        fails (PROVIDER_BAD_REQUEST); after MAX_SPLITS halvings each entry left spends an
        attempt and is retried later, until its attempts run out."""
        if len(leases) > 1 and splits < MAX_SPLITS:
            half = len(leases) // 2
            for part in (leases[:half], leases[half:]):
                await self._submit(provider, api, model, part, splits + 1)
            return
        alone = len(leases) == 1
        error = ProviderBadRequestError(provider, f"the batch API refused it: {exc}"[:500])
        for lease, _ in leases:
            await self._c.outcomes.failed(lease, error.info(model), error if alone else None)

    async def reconcile(
        self, record: SpillRecord, api: BatchAPI, owned: frozenset[str] = frozenset()
    ) -> None:
        """A SUBMITTING spill (a create that was ambiguous, or a process that died around
        it): adopt the batch the vendor's list shows for it (never one of `owned`, the
        batches other spills have); with none after BATCH_SUBMIT_TIMEOUT_SECONDS (or a list
        that still cannot be read by then), give every entry back unspent and forget the
        spill. A batch that turns up later changes nothing: the leases it named are stale."""
        n = len(record.entries)
        try:
            batch = await api.find(record.spill_id, record.model, n, record.started_at, owned)
        except BatchAPIUnavailableError as exc:
            logger.warning("spill %s: the vendor's list is unreadable: %s", record.spill_id, exc)
            batch = None
        if batch is not None:
            await self._c.spills.submitted(record.spill_id, batch)
            self._c.count_job(record, "reconciled")
            self._c.metrics.batch_items_per_job.labels(record.provider.value, record.model).observe(
                n
            )
            return
        age = (self._c.clock() - record.started_at).total_seconds()
        if age < self._c.settings.batch.submit_timeout_seconds:
            return
        await self._leases.release_unsettled(record, "not_run")
        await self._c.spills.finish(record.spill_id)
        self._leases.forget(record.spill_id)

    async def _release(self, leases: list[tuple[Lease, BatchEntry]]) -> None:
        for lease, _ in leases:
            await self._c.outcomes.released(lease)


def _chunks(api: BatchAPI, leases: list[Lease]) -> Iterator[list[tuple[Lease, BatchEntry]]]:
    """`leases` as batch entries, cut into batches within the vendor's caps on entries and
    bytes (an entry over the byte cap alone goes alone: the vendor decides)."""
    chunk: list[tuple[Lease, BatchEntry]] = []
    size = 0
    for lease in leases:
        job = lease.job
        prompt = render_prompt(job.request, swapped=job.swapped)
        entry = BatchEntry(custom_id_of(lease.queue_id), prompt, job.overrides)
        n = api.entry_bytes(entry)
        if chunk and (len(chunk) >= api.caps.max_items or size + n > api.caps.max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append((lease, entry))
        size += n
    if chunk:
        yield chunk
