"""AnthropicBatchAPI on the real anthropic SDK against the fake Message Batches over HTTP:
creating (refused, ambiguous, found again), polling, cancelling and deleting batches."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from devtools.redis_server import free_port
from services.llm_provider_service.batch.models import (
    BatchAPIUnavailableError,
    BatchCreateAmbiguousError,
    BatchCreateRefusedError,
    BatchState,
    RowOutcome,
)
from services.llm_provider_service.protocols import BatchAPI
from tests.integration.providers.batch.anthropic_batch_harness import (
    MODEL,
    all_rows,
    built,
    entries,
)
from tests.support.fake_vendors import FakeUpstream
from tests.support.fake_vendors.anthropic_batch_wire import CreateFault


@pytest.fixture
async def api(fake: FakeUpstream) -> AsyncIterator[BatchAPI]:
    async for built_api in built(fake):
        yield built_api


@pytest.mark.parametrize("fault", ["error_after_create", "drop_after_create"])
async def test_an_ambiguous_create_is_sent_once_and_found_in_the_list(
    fake: FakeUpstream, api: BatchAPI, fault: CreateFault
) -> None:
    since = datetime.now(UTC)
    fake.anthropic_batches.fail_create(fault)

    with pytest.raises(BatchCreateAmbiguousError):
        await api.create("spill-1", MODEL, entries(3))

    assert len(fake.anthropic_batches.calls("create")) == 1  # never retried by the SDK
    (made,) = fake.anthropic_batches.ids
    found = await api.find("spill-1", MODEL, 3, since)
    assert found is not None
    assert (found.batch_id, found.model, found.item_count) == (made, MODEL, 3)
    assert fake.anthropic_batches.calls("list")


async def test_find_matches_the_entry_count_and_the_creation_time(
    fake: FakeUpstream, api: BatchAPI
) -> None:
    since = datetime.now(UTC)
    other_size = await api.create("spill-a", MODEL, entries(2))
    too_old = await api.create("spill-b", MODEL, entries(3))
    fake.anthropic_batches.backdate(too_old.batch_id, 3600)

    assert await api.find("spill-c", MODEL, 3, since) is None
    assert await api.find("spill-c", MODEL, 4, since) is None
    found = await api.find("spill-a", MODEL, 2, since)
    assert found is not None
    assert found.batch_id == other_size.batch_id
    # A batch another spill already owns is never adopted.
    assert await api.find("spill-a", MODEL, 2, since, frozenset({found.batch_id})) is None


@pytest.mark.parametrize(
    ("fault", "retry_after"),
    [("refuse_429", 7.0), ("refuse_400", None), ("refuse_413", None)],
)
async def test_a_refused_create_made_no_batch(
    fake: FakeUpstream, api: BatchAPI, fault: CreateFault, retry_after: float | None
) -> None:
    fake.anthropic_batches.fail_create(fault)

    with pytest.raises(BatchCreateRefusedError) as refused:
        await api.create("spill-1", MODEL, entries(2))

    assert refused.value.retry_after == retry_after
    assert refused.value.capacity is (fault == "refuse_429")  # a 400/413 is the entries'
    assert len(fake.anthropic_batches.calls("create")) == 1
    assert fake.anthropic_batches.ids == []


async def test_a_batch_over_the_size_cap_is_refused(fake: FakeUpstream, api: BatchAPI) -> None:
    fake.anthropic_batches.max_bytes = 1000

    with pytest.raises(BatchCreateRefusedError, match="413"):
        await api.create("spill-1", MODEL, entries(3))


async def test_poll_follows_a_batch_to_its_end(fake: FakeUpstream, api: BatchAPI) -> None:
    batch = await api.create("spill-1", MODEL, entries(2))

    running = (await api.poll([batch]))[batch.batch_id]
    fake.anthropic_batches.end(batch.batch_id)
    ended = (await api.poll([batch]))[batch.batch_id]

    assert (running.state, running.provider_status) == (BatchState.RUNNING, "in_progress")
    assert (ended.state, ended.provider_status) == (BatchState.ENDED, "ended")
    assert len(fake.anthropic_batches.calls("retrieve")) == 2


async def test_an_expired_batch_ends_with_its_entries_not_run(
    fake: FakeUpstream, api: BatchAPI
) -> None:
    batch = await api.create("spill-1", MODEL, entries(3))
    fake.anthropic_batches.expire(batch.batch_id)

    poll = (await api.poll([batch]))[batch.batch_id]
    rows = await all_rows(api, batch)

    assert poll.state is BatchState.ENDED
    assert len(rows) == 3
    assert {row.outcome for row in rows} == {RowOutcome.NOT_RUN}


async def test_a_batch_the_vendor_lost_has_failed_and_its_entries_go_back(
    fake: FakeUpstream, api: BatchAPI
) -> None:
    batch = await api.create("spill-1", MODEL, entries(2))
    fake.anthropic_batches.forget(batch.batch_id)

    poll = (await api.poll([batch]))[batch.batch_id]

    assert (poll.state, poll.provider_status) == (BatchState.FAILED, "not_found")
    assert poll.retryable
    assert poll.error


async def test_many_batches_are_polled_through_the_list(fake: FakeUpstream, api: BatchAPI) -> None:
    batches = [await api.create(f"spill-{n}", MODEL, entries(1)) for n in range(5)]
    fake.anthropic_batches.end(batches[1].batch_id)
    fake.anthropic_batches.forget(batches[3].batch_id)

    polls = await api.poll(batches)

    assert len(fake.anthropic_batches.calls("list")) == 1
    assert len(fake.anthropic_batches.calls("retrieve")) == 1  # only the one not listed
    states = [polls[batch.batch_id].state for batch in batches]
    running, ended, failed = BatchState.RUNNING, BatchState.ENDED, BatchState.FAILED
    assert states == [running, ended, running, failed, running]


async def test_poll_without_an_answer_is_unavailable(fake: FakeUpstream, api: BatchAPI) -> None:
    batch = await api.create("spill-1", MODEL, entries(1))
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    async for unreachable in built(fake, anthropic_base_url=nobody, anthropic_timeout_seconds=1):
        with pytest.raises(BatchAPIUnavailableError):
            await unreachable.poll([batch])
        with pytest.raises(BatchAPIUnavailableError):
            await unreachable.cancel(batch)
        with pytest.raises(BatchAPIUnavailableError):
            await unreachable.find("spill-1", MODEL, 1, batch.created_at)


async def test_cancel_reaches_the_vendor_and_unrun_entries_come_back_not_run(
    fake: FakeUpstream, api: BatchAPI
) -> None:
    batch = await api.create("spill-1", MODEL, entries(2))

    await api.cancel(batch)
    canceling = (await api.poll([batch]))[batch.batch_id]
    fake.anthropic_batches.end(batch.batch_id)
    rows = await all_rows(api, batch)

    assert len(fake.anthropic_batches.calls("cancel")) == 1
    assert (canceling.state, canceling.provider_status) == (BatchState.RUNNING, "canceling")
    assert {row.outcome for row in rows} == {RowOutcome.NOT_RUN}
    await api.cancel(batch)  # ended: nothing left to stop, no error


async def test_delete_reaches_the_vendor_once_the_batch_ended(
    fake: FakeUpstream, api: BatchAPI
) -> None:
    batch = await api.create("spill-1", MODEL, entries(1))

    with pytest.raises(BatchAPIUnavailableError):
        await api.delete(batch)  # Anthropic deletes only ended batches
    fake.anthropic_batches.end(batch.batch_id)
    await api.delete(batch)
    await api.delete(batch)  # already gone: no error

    assert len(fake.anthropic_batches.calls("delete")) == 3
    assert fake.anthropic_batches.ids == []


async def test_a_held_create_has_made_its_batch_and_answers_once_released(
    fake: FakeUpstream, api: BatchAPI
) -> None:
    fake.anthropic_batches.hold("create")
    creating = asyncio.create_task(api.create("spill-1", MODEL, entries(2)))

    assert await asyncio.to_thread(fake.anthropic_batches.wait_held, "create")
    (made,) = fake.anthropic_batches.ids  # made before the answer: a crash now loses only that
    assert not creating.done()
    fake.anthropic_batches.release("create")
    batch = await creating

    assert batch.batch_id == made


async def test_held_results_are_read_once_released(fake: FakeUpstream, api: BatchAPI) -> None:
    batch = await api.create("spill-1", MODEL, entries(2))
    fake.anthropic_batches.end(batch.batch_id)
    fake.anthropic_batches.hold("results")
    reading = asyncio.create_task(all_rows(api, batch))

    assert await asyncio.to_thread(fake.anthropic_batches.wait_held, "results")
    assert not reading.done()
    fake.anthropic_batches.release("results")

    assert len(await reading) == 2
