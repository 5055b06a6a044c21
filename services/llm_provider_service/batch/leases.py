"""`SpillLeases`: the queue leases of every entry of the open spills, kept alive while their
requests sit in a provider batch, and rebuilt from the store after a restart."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from common_core.enums import QueueStatus
from services.llm_provider_service.batch.context import BatchContext
from services.llm_provider_service.batch.models import custom_id_of
from services.llm_provider_service.errors import QueueUnavailableError
from services.llm_provider_service.models import Lease
from services.llm_provider_service.protocols.batch import SpillRecord

logger = logging.getLogger(__name__)


class SpillLeases:
    """Leases by spill and custom id. Only a cache: every lease can be rebuilt from the
    spill's entry (id, token, attempt) and the queue's record of the request."""

    def __init__(self, context: BatchContext) -> None:
        self._c = context
        self._leases: dict[str, dict[str, Lease]] = {}
        self._beaten: dict[str, datetime] = {}

    def remember(self, spill_id: str, leases: list[Lease]) -> None:
        self._leases[spill_id] = {custom_id_of(lease.queue_id): lease for lease in leases}
        self._beaten[spill_id] = self._c.clock()

    def forget(self, spill_id: str) -> None:
        self._leases.pop(spill_id, None)
        self._beaten.pop(spill_id, None)

    async def of(self, record: SpillRecord) -> dict[str, Lease]:
        """The leases of `record`'s unsettled entries that could be rebuilt: an entry whose
        request is gone or no longer PROCESSING has none (its lease is surely stale).
        Raises `QueueUnavailableError`."""
        known = self._leases.setdefault(record.spill_id, {})
        for entry in record.entries:
            custom_id = custom_id_of(entry.queue_id)
            lease = known.get(custom_id)
            if custom_id in record.settled or (lease is not None and lease.expires_at):
                continue
            # Rebuilt after a restart, or learning the TTL a queue's claim did not give.
            queued = await self._c.queue.get(entry.queue_id)
            if queued is None or queued.status is not QueueStatus.PROCESSING:
                known.pop(custom_id, None)
                continue
            known[custom_id] = Lease(
                queue_id=entry.queue_id,
                token=entry.token,
                owner=self._c.owner,
                attempt=entry.attempt,
                job=queued.job,
                queued_at=queued.queued_at,
                claimed_at=lease.claimed_at if lease else None,
                expires_at=queued.expires_at,
            )
        return {cid: lease for cid, lease in known.items() if cid not in record.settled}

    async def keep_alive(self, record: SpillRecord) -> SpillRecord:
        """Heartbeat every unsettled entry at most every third of BATCH_LEASE_SECONDS; an
        entry whose lease is lost (cancelled, reclaimed) or whose request passed its
        expires_at is dead for us: settled with no queue change (the queue or its reaper
        ends it), never completed later. Returns the record with those settled."""
        now = self._c.clock()
        last = self._beaten.get(record.spill_id)
        interval = self._c.settings.batch.lease_seconds / 3
        if last is not None and (now - last).total_seconds() < interval:
            return record
        try:
            leases = await self.of(record)
            dead = [cid for cid in unsettled(record) if cid not in leases]
            for custom_id, lease in leases.items():
                expired = lease.expires_at is not None and lease.expires_at <= now
                if expired or not await self._c.queue.heartbeat(lease):
                    dead.append(custom_id)
        except QueueUnavailableError as exc:
            logger.warning("spill %s: leases not kept alive this time: %s", record.spill_id, exc)
            return record
        self._beaten[record.spill_id] = now
        return await self.settle_dead(record, dead)

    async def settle_dead(self, record: SpillRecord, dead: list[str]) -> SpillRecord:
        """Settle `dead` entries, counted `late_dropped`."""
        if not dead:
            return record
        await self._c.spills.settle(record.spill_id, dead)
        self._c.count_items(record, "late_dropped", len(dead))
        return with_settled(record, dead)

    async def release_unsettled(self, record: SpillRecord, outcome: str) -> SpillRecord:
        """Give every unsettled entry back to the queue unspent (a lost lease changes
        nothing), settling each after; counted as `outcome`. Raises
        `QueueUnavailableError` when the leases cannot be rebuilt."""
        leases = await self.of(record)
        released = []
        for custom_id in unsettled(record):
            lease = leases.get(custom_id)
            if lease is not None:
                await self._c.outcomes.released(lease)
            released.append(custom_id)
        await self._c.spills.settle(record.spill_id, released)
        self._c.count_items(record, outcome, len(released))
        return with_settled(record, released)


def unsettled(record: SpillRecord) -> list[str]:
    """The custom ids of `record`'s entries not yet settled, in entry order."""
    ids = (custom_id_of(entry.queue_id) for entry in record.entries)
    return [custom_id for custom_id in ids if custom_id not in record.settled]


def with_settled(record: SpillRecord, custom_ids: list[str]) -> SpillRecord:
    """`record` with `custom_ids` settled too (as the store now holds it)."""
    return replace(record, settled=record.settled | frozenset(custom_ids))
