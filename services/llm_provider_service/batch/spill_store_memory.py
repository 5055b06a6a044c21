"""`InMemorySpillStore`: the batch lane's records in this process's memory (development and
tests; lost on restart with the in-memory queue whose leases they describe)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from services.llm_provider_service.batch.models import ProviderBatch
from services.llm_provider_service.protocols.batch import SpillRecord, SpillState


class InMemorySpillStore:
    """The `SpillStore` contract in memory; `clock` (monotonic seconds) times the holds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._records: dict[str, SpillRecord] = {}
        self._holds: dict[str, tuple[str, float]] = {}  # spill id -> (owner, until)

    async def begin(self, record: SpillRecord) -> None:
        self._records[record.spill_id] = record

    async def submitted(self, spill_id: str, batch: ProviderBatch) -> None:
        if (record := self._records.get(spill_id)) is not None:
            self._records[spill_id] = replace(record, state=SpillState.SUBMITTED, batch=batch)

    async def settle(self, spill_id: str, custom_ids: Sequence[str]) -> None:
        if (record := self._records.get(spill_id)) is not None:
            self._records[spill_id] = replace(record, settled=record.settled | set(custom_ids))

    async def get(self, spill_id: str) -> SpillRecord | None:
        return self._records.get(spill_id)

    async def open(self) -> list[SpillRecord]:
        return sorted(self._records.values(), key=lambda r: (r.started_at, r.spill_id))

    async def finish(self, spill_id: str) -> None:
        self._records.pop(spill_id, None)
        self._holds.pop(spill_id, None)

    async def take(self, spill_id: str, owner: str, seconds: float) -> bool:
        if spill_id not in self._records:
            return False
        now = self._clock()
        holder = self._holds.get(spill_id)
        if holder is not None and holder[0] != owner and holder[1] > now:
            return False
        self._holds[spill_id] = (owner, now + seconds)
        return True
