"""`Ingest`: applies a terminal provider batch to the queue, one entry at a time, each through
the same fenced complete, fail or release a worker uses, settling each after it is applied."""

from __future__ import annotations

import logging

from common_core.api_models import ErrorInfo
from common_core.enums import ErrorCode, QueueStatus, ServedVia
from services.llm_provider_service.batch.context import BatchContext
from services.llm_provider_service.batch.leases import SpillLeases, unsettled, with_settled
from services.llm_provider_service.batch.models import (
    BatchAPIUnavailableError,
    BatchPoll,
    BatchRow,
    RowOutcome,
    custom_id_of,
)
from services.llm_provider_service.models import Lease
from services.llm_provider_service.protocols import BatchAPI
from services.llm_provider_service.protocols.batch import SpillRecord

logger = logging.getLogger(__name__)


class Ingest:
    """What a poll's terminal answer does to a spill's entries. A crash anywhere re-applies
    nothing: an entry is settled after its row is applied, a settled entry is skipped, and
    an unsettled one whose request already ended (our complete landed) has a dead lease."""

    def __init__(self, context: BatchContext, leases: SpillLeases) -> None:
        self._c = context
        self._leases = leases

    async def ended(self, record: SpillRecord, api: BatchAPI) -> None:
        """An ENDED batch: each row applied to its entry (rows for other ids, and repeats,
        counted and ignored), then every entry without a row released as `missing`, then
        the vendor's copies deleted and the spill finished. Raises
        `BatchAPIUnavailableError` when the rows cannot be read (read again next time)."""
        assert record.batch is not None
        leases = await self._leases.of(record)
        ours = {custom_id_of(entry.queue_id) for entry in record.entries}
        seen: set[str] = set()
        async for row in api.rows(record.batch):
            custom_id = row.custom_id
            if custom_id not in ours or custom_id in seen:
                self._c.count_items(record, "unknown" if custom_id not in ours else "duplicate")
                continue
            seen.add(custom_id)
            if custom_id in record.settled:
                continue  # applied before a restart
            lease = leases.get(custom_id)
            outcome = "late_dropped" if lease is None else await self._apply(record, lease, row)
            await self._c.spills.settle(record.spill_id, [custom_id])
            record = with_settled(record, [custom_id])
            self._c.count_items(record, outcome)
        record = await self._leases.release_unsettled(record, "missing")
        if record.entries and not seen:
            # Not one row names our entries: the vendor batch is another's (an ambiguous
            # create matched by count and time); leave it alone, forget only our spill.
            logger.error(
                "spill %s: batch %s holds none of its entries; left undeleted",
                record.spill_id,
                record.batch.batch_id if record.batch else None,
            )
            await self.close(record, api, delete=False)
            return
        await self.close(record, api)

    async def failed(self, record: SpillRecord, poll: BatchPoll, api: BatchAPI) -> None:
        """A FAILED batch: the entries the vendor blamed fail with their error and the others
        go back to the queue unspent. When it blamed none and the failure was not its
        capacity (`poll.retryable`), each entry spends an attempt instead: a batch that
        fails every time must not come back for ever."""
        leases = await self._leases.of(record)
        spend = not poll.entry_errors and not poll.retryable
        for custom_id in unsettled(record):
            error = poll.entry_errors.get(custom_id)
            lease = leases.get(custom_id)
            if lease is None or (error is None and not spend):
                continue
            if error is None:
                info = ErrorInfo(
                    code=ErrorCode.PROVIDER_UNAVAILABLE.value,
                    message=f"the provider batch failed: {poll.error or poll.provider_status}",
                )
                status = await self._c.outcomes.failed(lease, info, None)
            else:
                status = await self._c.outcomes.failed(lease, error.info(record.model), error)
            await self._c.spills.settle(record.spill_id, [custom_id])
            record = with_settled(record, [custom_id])
            self._c.count_items(record, _failure_outcome(status))
        record = await self._leases.release_unsettled(record, "not_run")
        await self.close(record, api)

    async def not_run(self, record: SpillRecord, api: BatchAPI) -> None:
        """An EXPIRED or CANCELLED batch without rows: every entry goes back unspent."""
        record = await self._leases.release_unsettled(record, "not_run")
        await self.close(record, api)

    async def close(self, record: SpillRecord, api: BatchAPI, *, delete: bool = True) -> None:
        """Every entry is settled: delete the vendor's copies (student essays) and forget
        the spill. A failed delete leaves the spill open, to be deleted next time."""
        if delete and record.batch is not None:
            try:
                await api.delete(record.batch)
            except BatchAPIUnavailableError as exc:
                logger.warning("batch %s not deleted yet: %s", record.batch.batch_id, exc)
                return
        await self._c.spills.finish(record.spill_id)
        self._leases.forget(record.spill_id)

    async def _apply(self, record: SpillRecord, lease: Lease, row: BatchRow) -> str:
        """Apply one row through `lease`; returns its outcome for `batch_items_total`."""
        now = self._c.clock()
        if lease.expires_at is not None and lease.expires_at <= now:
            return "late_dropped"  # past its TTL: never completed; the reaper expires it
        if row.outcome is RowOutcome.NOT_RUN:
            released = await self._c.outcomes.released(lease)
            return "not_run" if released else "late_dropped"
        if row.outcome is RowOutcome.ERRORED and row.error is not None:
            info = row.error.info(record.model)
            return _failure_outcome(await self._c.outcomes.failed(lease, info, row.error))
        if row.judgement is None:
            logger.error("row %s of spill %s has no answer", row.custom_id, record.spill_id)
            return _failure_outcome(await self._c.outcomes.failed(lease, _NO_ANSWER, None))
        # The request may have been cancelled, or ended by our own complete before a crash:
        # ask before the answer is observed and counted, so a restart counts it once.
        if not await self._c.queue.heartbeat(lease):
            return "late_dropped"
        batch = record.batch
        elapsed = max(0.0, (now - batch.created_at).total_seconds()) if batch else 0.0
        result = await self._c.calls.answered_elsewhere(
            lease.job, row.judgement, elapsed=elapsed, served_via=ServedVia.BATCH
        )
        wait = (record.started_at - lease.queued_at).total_seconds()
        if not await self._c.outcomes.completed(lease, result, wait=wait):
            return "late_dropped"
        self._c.count_savings(record.provider, result)
        return "succeeded"


def _failure_outcome(status: QueueStatus | None) -> str:
    if status is QueueStatus.QUEUED:
        return "retried"
    return "failed" if status is QueueStatus.FAILED else "late_dropped"


_NO_ANSWER = ErrorInfo(
    code=ErrorCode.INVALID_PROVIDER_RESPONSE.value,
    message="the provider's batch row held no answer",
)
