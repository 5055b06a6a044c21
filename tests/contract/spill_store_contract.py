"""The `SpillStore` contract: one behaviour suite every spill store must pass.

A harness module star-imports this and defines `store` (a fresh, empty store) and
`advance(seconds)` (lets that much of the holds' time pass: a clock moved, or real time).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from common_core.enums import LLMProviderType
from services.llm_provider_service.batch.models import ProviderBatch
from services.llm_provider_service.protocols import SpillStore
from services.llm_provider_service.protocols.batch import SpillEntry, SpillRecord, SpillState

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def make_record(
    spill_id: str | None = None, *, n: int = 3, started_at: datetime = T0
) -> SpillRecord:
    return SpillRecord(
        spill_id=spill_id or uuid4().hex,
        provider=LLMProviderType.OPENAI,
        model="gpt-5-mini",
        state=SpillState.SUBMITTING,
        started_at=started_at,
        entries=tuple(SpillEntry(uuid4(), token=10 + i, attempt=1 + i) for i in range(n)),
    )


def make_batch(record: SpillRecord) -> ProviderBatch:
    return ProviderBatch(
        provider=record.provider,
        batch_id=f"batch_{record.spill_id}",
        model=record.model,
        created_at=record.started_at + timedelta(seconds=1),
        item_count=len(record.entries),
        files=("file-in", "file-out"),
    )


async def test_a_begun_record_reads_back_exactly(store: SpillStore) -> None:
    record = make_record()
    await store.begin(record)
    assert await store.get(record.spill_id) == record
    assert await store.get("no-such-spill") is None


async def test_submitted_records_the_batch_and_the_state(store: SpillStore) -> None:
    record = make_record()
    await store.begin(record)
    await store.submitted(record.spill_id, make_batch(record))
    found = await store.get(record.spill_id)
    assert found is not None
    assert found.state is SpillState.SUBMITTED
    assert found.batch == make_batch(record)
    assert found.entries == record.entries


async def test_settle_accumulates_and_is_idempotent(store: SpillStore) -> None:
    record = make_record()
    ids = [e.queue_id.hex for e in record.entries]
    await store.begin(record)
    await store.settle(record.spill_id, ids[:1])
    await store.settle(record.spill_id, ids[:2])
    await store.settle(record.spill_id, [])
    found = await store.get(record.spill_id)
    assert found is not None
    assert found.settled == frozenset(ids[:2])


async def test_open_lists_unfinished_spills_oldest_first(store: SpillStore) -> None:
    late = make_record(started_at=T0 + timedelta(minutes=5))
    early = make_record(started_at=T0)
    done = make_record(started_at=T0 + timedelta(minutes=1))
    for record in (late, early, done):
        await store.begin(record)
    await store.finish(done.spill_id)
    assert [r.spill_id for r in await store.open()] == [early.spill_id, late.spill_id]


async def test_finish_forgets_the_spill_and_later_writes_do_not_revive_it(
    store: SpillStore,
) -> None:
    record = make_record()
    await store.begin(record)
    await store.finish(record.spill_id)
    await store.finish(record.spill_id)  # idempotent
    await store.submitted(record.spill_id, make_batch(record))
    await store.settle(record.spill_id, [record.entries[0].queue_id.hex])
    assert await store.get(record.spill_id) is None
    assert await store.open() == []
    assert not await store.take(record.spill_id, "a", 30)


async def test_one_owner_holds_a_spill_at_a_time(store: SpillStore) -> None:
    record = make_record()
    await store.begin(record)
    assert await store.take(record.spill_id, "a", 30)
    assert not await store.take(record.spill_id, "b", 30)
    assert await store.take(record.spill_id, "a", 30)  # extends its own hold


async def test_a_hold_that_runs_out_can_be_taken_by_another(store: SpillStore, advance) -> None:
    record = make_record()
    await store.begin(record)
    assert await store.take(record.spill_id, "a", 0.05)
    for _ in range(200):  # poll until the hold has run out
        await advance(0.05)
        if await store.take(record.spill_id, "b", 30):
            break
    else:
        raise AssertionError("the hold of a never ran out")
    assert not await store.take(record.spill_id, "a", 30)
