"""The batch engine against a scripted Batch API whose batches move only when the test says:
every outcome of a row or a batch lands on the queue once, as a worker's would."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import fakeredis
import pytest

from common_core.enums import EssayWinner, LLMProviderType, PresentationOrder, QueueStatus
from services.llm_provider_service.batch.models import (
    BatchAPIUnavailableError,
    BatchCreateAmbiguousError,
    BatchCreateRefusedError,
    BatchPoll,
    BatchRow,
    BatchState,
    RowOutcome,
    custom_id_of,
)
from services.llm_provider_service.errors import (
    InvalidProviderResponseError,
    ProviderUnavailableError,
)
from services.llm_provider_service.models import ComparisonJob
from tests.factories import FakeClock
from tests.fakes import judgement
from tests.support.batch_rig import BatchRig, build_batch_rig
from tests.support.redis_queue import QueueBuilder
from tests.support.scripted_batch_api import MADE_THEN_AMBIGUOUS, Crash

MOCK = LLMProviderType.MOCK


@pytest.fixture
def batch_settings(make_settings):
    return make_settings(
        queue_lease_seconds=900,
        queue_max_attempts=3,
        batch_lease_seconds=900,
        batch_poll_seconds=60,
        batch_max_wait_seconds=30,
        batch_submit_timeout_seconds=600,
    )


@pytest.fixture(params=["memory", "fakeredis"])
async def rig(request, batch_settings) -> AsyncIterator[BatchRig]:
    """The engine on the in-memory queue, and on the Redis queue (over fakeredis) with its
    time moved along with the engine's."""
    if request.param == "memory":
        yield build_batch_rig(batch_settings)
        return
    client = fakeredis.FakeAsyncRedis(decode_responses=True)
    builder = QueueBuilder(client)
    rig = build_batch_rig(
        batch_settings,
        queue=builder.build(batch_settings.queue),
        clock=FakeClock(start=time.time()),
    )
    rig.also_advance.append(builder.time.advance)
    yield rig
    await client.aclose()


def ok(job: ComparisonJob, winner: EssayWinner = EssayWinner.ESSAY_A) -> BatchRow:
    return BatchRow(custom_id_of(job.request_id), RowOutcome.SUCCEEDED, judgement=judgement(winner))


def errored(job: ComparisonJob, error) -> BatchRow:
    return BatchRow(custom_id_of(job.request_id), RowOutcome.ERRORED, error=error)


def not_run(job: ComparisonJob) -> BatchRow:
    return BatchRow(custom_id_of(job.request_id), RowOutcome.NOT_RUN)


def outage() -> ProviderUnavailableError:
    return ProviderUnavailableError(MOCK, "overloaded", reason="server_error", status=529)


async def test_a_batch_is_submitted_and_its_rows_complete_each_request_once(rig):
    jobs = await rig.enqueue(2)
    swapped = (await rig.enqueue(1, presentation_order=PresentationOrder.SWAPPED))[0]
    jobs.append(swapped)

    await rig.submit()
    fake = rig.api.only_batch()
    assert [e.custom_id for e in fake.entries] == [custom_id_of(j.request_id) for j in jobs]
    assert await rig.statuses(jobs) == [QueueStatus.PROCESSING] * 3
    assert rig.events("request_started") == {j.request_id: 1 for j in jobs}
    assert rig.jobs_counted("submitted") == 1

    await rig.step()  # still running: nothing changes
    assert await rig.statuses(jobs) == [QueueStatus.PROCESSING] * 3

    # Out of order; the swapped job's provider saw essay B first, so its "A" is the caller's B.
    rig.api.end(fake.batch.batch_id, [ok(swapped), ok(jobs[1], EssayWinner.ESSAY_B), ok(jobs[0])])
    await rig.step()

    assert await rig.statuses(jobs) == [QueueStatus.COMPLETED] * 3
    winners = [(await rig.record(j.request_id)).result.winner for j in jobs]
    assert winners == [EssayWinner.ESSAY_A, EssayWinner.ESSAY_B, EssayWinner.ESSAY_B]
    assert rig.events("request_completed") == {j.request_id: 1 for j in jobs}
    assert rig.items("succeeded") == 3
    assert rig.jobs_counted("ended") == 1
    assert rig.api.deleted == [fake.batch.batch_id]
    assert await rig.spills.open() == []
    sample = rig.path.metrics.registry.get_sample_value
    labels = {"provider": "mock", "model": "scripted-1"}
    assert sample("llm_provider_batch_api_items_per_job_sum", labels) == 3
    assert sample("llm_provider_batch_api_job_duration_seconds_sum", labels) == 120
    await rig.step()
    assert sample("llm_provider_batch_open_jobs", {"provider": "mock"}) == 0


async def test_each_replicate_is_its_own_entry(rig):
    request = (await rig.enqueue(1))[0].request
    jobs = await rig.enqueue(2, request=request)

    await rig.submit()

    ids = [e.custom_id for e in rig.api.only_batch().entries]
    assert len(ids) == 3
    assert {custom_id_of(j.request_id) for j in jobs} < set(ids)


async def test_mixed_outcomes_in_one_batch_each_land_as_their_row_says(rig):
    done, final, retry, unrun, missing = await rig.enqueue(5)
    await rig.submit()
    fake = rig.api.only_batch()
    bad = InvalidProviderResponseError(MOCK, "not the judgement schema")
    rig.api.end(
        fake.batch.batch_id,
        [
            ok(done),
            errored(final, bad),
            errored(retry, outage()),
            not_run(unrun),
            ok(done, EssayWinner.ESSAY_B),  # a repeated row changes nothing
            BatchRow("f" * 32, RowOutcome.SUCCEEDED, judgement=judgement()),  # not ours
        ],
    )

    await rig.step()

    assert await rig.statuses([done, final, retry, unrun, missing]) == [
        QueueStatus.COMPLETED,
        QueueStatus.FAILED,
        QueueStatus.QUEUED,
        QueueStatus.QUEUED,
        QueueStatus.QUEUED,
    ]
    assert (await rig.record(done.request_id)).result.winner is EssayWinner.ESSAY_A
    assert (await rig.record(final.request_id)).error.code == "INVALID_PROVIDER_RESPONSE"
    assert (await rig.record(retry.request_id)).attempts == 1  # spent, retried after backoff
    assert (await rig.record(unrun.request_id)).attempts == 0  # unspent
    assert (await rig.record(missing.request_id)).attempts == 0
    counts = {o: rig.items(o) for o in ("succeeded", "failed", "retried", "not_run", "missing")}
    assert counts == {"succeeded": 1, "failed": 1, "retried": 1, "not_run": 1, "missing": 1}
    assert rig.items("duplicate") == 1
    assert rig.items("unknown") == 1
    assert rig.events("request_completed") == {done.request_id: 1}
    assert await rig.spills.open() == []


async def test_a_refused_create_gives_every_request_back_unspent_and_pauses_the_provider(rig):
    rig.api.creates = [BatchCreateRefusedError("queue limit", retry_after=120)]
    jobs = await rig.enqueue(2)

    await rig.submit()

    assert await rig.statuses(jobs) == [QueueStatus.QUEUED] * 2
    assert [(await rig.record(j.request_id)).attempts for j in jobs] == [0, 0]
    assert rig.jobs_counted("refused") == 1
    assert await rig.spills.open() == []
    await rig.step(60)  # still paused
    assert rig.api.calls.count("create") == 1
    await rig.step(61)  # the pause is over: waiting again
    await rig.step(30)
    assert rig.api.calls.count("create") == 2
    assert await rig.statuses(jobs) == [QueueStatus.PROCESSING] * 2


async def test_an_ambiguous_create_is_adopted_when_the_vendor_lists_it(rig):
    rig.api.creates = [MADE_THEN_AMBIGUOUS]
    jobs = await rig.enqueue(2)

    await rig.submit()
    assert rig.jobs_counted("ambiguous") == 1
    [record] = await rig.spills.open()
    assert record.batch is None

    await rig.step()  # reconciled: the vendor's list shows it
    assert rig.jobs_counted("reconciled") == 1
    fake = rig.api.only_batch()
    [record] = await rig.spills.open()
    assert record.batch == fake.batch

    rig.api.end(fake.batch.batch_id, [ok(j) for j in jobs])
    await rig.step()
    assert await rig.statuses(jobs) == [QueueStatus.COMPLETED] * 2
    assert rig.api.calls.count("create") == 1


async def test_an_ambiguous_create_not_listed_is_released_after_the_submit_timeout(rig):
    rig.api.creates = [BatchCreateAmbiguousError("timeout")]
    jobs = await rig.enqueue(2)

    await rig.submit()
    await rig.step(500)
    assert await rig.statuses(jobs) == [QueueStatus.PROCESSING] * 2  # still looking
    assert len(await rig.spills.open()) == 1

    await rig.step(101)  # past BATCH_SUBMIT_TIMEOUT_SECONDS: back to the queue unspent
    assert await rig.spills.open() == []
    assert await rig.statuses(jobs) == [QueueStatus.QUEUED] * 2
    assert [(await rig.record(j.request_id)).attempts for j in jobs] == [0, 0]
    assert rig.api.calls.count("find") == 2


async def test_a_crash_between_create_and_recording_loses_nothing(rig, monkeypatch):
    jobs = await rig.enqueue(2)

    async def crash(spill_id, batch):
        raise Crash

    monkeypatch.setattr(rig.spills, "submitted", crash)
    with pytest.raises(Crash):
        await rig.submit()
    monkeypatch.undo()

    successor = rig.restarted()
    await successor.step(600)  # the first holder's hold ran out; its leases are still current
    fake = rig.api.only_batch()
    [record] = await rig.spills.open()
    assert record.batch == fake.batch  # adopted, not made again

    rig.api.end(fake.batch.batch_id, [ok(j) for j in jobs])
    await successor.step()
    assert await successor.statuses(jobs) == [QueueStatus.COMPLETED] * 2
    assert rig.events("request_completed") == {j.request_id: 1 for j in jobs}


async def test_a_crash_during_ingest_applies_each_row_once_after_a_restart(rig):
    jobs = await rig.enqueue(4)
    await rig.submit()
    fake = rig.api.only_batch()
    rig.api.end(fake.batch.batch_id, [ok(j) for j in jobs])
    fake.crash_after_rows = 2

    with pytest.raises(Crash):
        await rig.step()
    assert await rig.statuses(jobs) == [QueueStatus.COMPLETED] * 2 + [QueueStatus.PROCESSING] * 2

    successor = rig.restarted()
    await successor.step(600)

    assert await successor.statuses(jobs) == [QueueStatus.COMPLETED] * 4
    assert rig.events("request_completed") == {j.request_id: 1 for j in jobs}
    assert rig.events("queue_status_changed") == {j.request_id: 1 for j in jobs}
    assert await rig.spills.open() == []


async def test_a_crash_between_complete_and_settle_completes_nothing_twice(rig, monkeypatch):
    jobs = await rig.enqueue(2)
    await rig.submit()
    fake = rig.api.only_batch()
    rig.api.end(fake.batch.batch_id, [ok(j) for j in jobs])
    settle = rig.spills.settle

    async def crash(spill_id, custom_ids):
        raise Crash

    monkeypatch.setattr(rig.spills, "settle", crash)
    with pytest.raises(Crash):
        await rig.step()
    monkeypatch.setattr(rig.spills, "settle", settle)
    assert await rig.statuses(jobs) == [QueueStatus.COMPLETED, QueueStatus.PROCESSING]

    successor = rig.restarted()
    await successor.step(600)

    assert await successor.statuses(jobs) == [QueueStatus.COMPLETED] * 2
    assert rig.events("request_completed") == {j.request_id: 1 for j in jobs}
    assert rig.events("queue_status_changed") == {j.request_id: 1 for j in jobs}
    assert await rig.spills.open() == []


async def test_a_batch_whose_requests_are_all_dead_is_cancelled_and_deleted(rig):
    jobs = await rig.enqueue(2)
    await rig.submit()
    fake = rig.api.only_batch()
    for job in jobs:  # cancelled or reclaimed meanwhile: the engine's leases are stale
        await rig.queue.release(_lease_of(rig, job))

    await rig.step(300)  # the keep-alive finds them dead; the batch is cancelled

    assert rig.api.cancelled == [fake.batch.batch_id]
    assert rig.api.deleted == [fake.batch.batch_id]
    assert await rig.spills.open() == []
    assert rig.items("late_dropped") == 2
    rig.api.end(fake.batch.batch_id, [ok(j) for j in jobs])  # too late: nothing reads it
    await rig.step()
    assert QueueStatus.COMPLETED not in await rig.statuses(jobs)
    assert rig.events("request_completed") == {}


async def test_a_request_whose_ttl_passes_while_batched_is_never_completed(rig):
    [late] = await rig.enqueue(1)
    await rig.queue.enqueue(  # a short TTL, in the same batch
        short := _job(), priority=5, ttl_seconds=200
    )
    await rig.submit()
    fake = rig.api.only_batch()

    await rig.step(301)  # past the short TTL: dead for the engine, left to the reaper
    rig.api.end(fake.batch.batch_id, [ok(short), ok(late)])
    await rig.submit()
    await rig.step(900)  # its lease lapses; the reaper ends it
    await rig.queue.reap()

    assert (await rig.record(late.request_id)).status is QueueStatus.COMPLETED
    assert (await rig.record(short.request_id)).status is QueueStatus.EXPIRED
    assert rig.events("request_completed") == {late.request_id: 1}


async def test_a_failed_batch_fails_the_blamed_entries_and_releases_the_rest(rig):
    blamed, innocent = await rig.enqueue(2)
    await rig.submit()
    fake = rig.api.only_batch()
    error = InvalidProviderResponseError(MOCK, "line 1: bad body")
    fake.poll = BatchPoll(
        BatchState.FAILED,
        "failed",
        entry_errors={custom_id_of(blamed.request_id): error},
    )

    await rig.step()

    assert await rig.statuses([blamed, innocent]) == [QueueStatus.FAILED, QueueStatus.QUEUED]
    assert (await rig.record(innocent.request_id)).attempts == 0
    assert rig.jobs_counted("failed") == 1
    assert rig.api.deleted == [fake.batch.batch_id]


async def test_an_expired_batch_gives_every_request_back_unspent(rig):
    jobs = await rig.enqueue(2)
    await rig.submit()
    fake = rig.api.only_batch()
    fake.state = BatchState.EXPIRED

    await rig.step()

    assert await rig.statuses(jobs) == [QueueStatus.QUEUED] * 2
    assert [(await rig.record(j.request_id)).attempts for j in jobs] == [0, 0]
    assert rig.jobs_counted("expired") == 1


async def test_a_batch_waits_to_fill_until_the_oldest_has_waited_long_enough(make_settings):
    rig = build_batch_rig(make_settings(batch_max_wait_seconds=120, batch_lease_seconds=900))
    await rig.enqueue(2)

    await rig.step(0)
    await rig.step(100)
    assert rig.api.calls.count("create") == 0
    await rig.step(21)
    assert rig.api.calls.count("create") == 1
    assert len(rig.api.only_batch().entries) == 2


def _job() -> ComparisonJob:
    from tests.factories import make_job

    return make_job()


def _lease_of(rig: BatchRig, job: ComparisonJob):
    for leases in rig.engine._leases._leases.values():
        for lease in leases.values():
            if lease.queue_id == job.request_id:
                return lease
    raise AssertionError(f"no lease for {job.request_id}")


# What a review of the engine found, each seen failing before its fix.


async def test_a_reconciled_create_never_adopts_a_batch_another_spill_owns(rig):
    """Matched by entry count alone (Anthropic, OpenRouter), spill A's ambiguous create
    that made nothing would adopt spill B's batch of the same size, then delete it."""
    rig.api.find_by_count = True
    rig.api.creates = [BatchCreateAmbiguousError("timeout"), None]
    first = await rig.enqueue(2)
    await rig.submit()  # spill A: nothing made
    second = await rig.enqueue(2)
    await rig.submit()  # spill B: made
    fake = rig.api.only_batch()

    await rig.step()  # A reconciles: the only batch of 2 is B's
    rig.api.end(fake.batch.batch_id, [ok(j) for j in second])
    await rig.step()

    assert rig.jobs_counted("reconciled") == 0
    assert await rig.statuses(second) == [QueueStatus.COMPLETED] * 2
    assert await rig.statuses(first) == [QueueStatus.PROCESSING] * 2  # still looking
    assert rig.api.deleted == [fake.batch.batch_id]


async def test_entries_the_vendor_refuses_are_split_out_and_the_rest_are_sent(rig):
    """A refusal of the entries (a 400, not capacity) halves the batch: the good half is
    sent, the entry refused alone fails, and the provider is not paused."""
    bad_request = BatchCreateRefusedError("invalid model in entry 2")
    rig.api.creates = [bad_request, None, bad_request]
    good, bad = await rig.enqueue(2)

    await rig.submit()

    assert await rig.statuses([good, bad]) == [QueueStatus.PROCESSING, QueueStatus.FAILED]
    failed = await rig.record(bad.request_id)
    assert failed.error is not None
    assert failed.error.code == "PROVIDER_BAD_REQUEST"
    later = await rig.enqueue(1)
    await rig.submit()  # not paused: the next batch goes at once
    assert await rig.statuses(later) == [QueueStatus.PROCESSING]


async def test_an_ambiguous_create_is_given_up_at_the_timeout_even_if_the_list_stays_unreadable(
    rig,
):
    rig.api.creates = [BatchCreateAmbiguousError("timeout")]
    rig.api.find_error = BatchAPIUnavailableError("list: 503")
    jobs = await rig.enqueue(2)
    await rig.submit()

    await rig.step(rig.settings.batch.submit_timeout_seconds + 1)

    assert await rig.statuses(jobs) == [QueueStatus.QUEUED] * 2
    assert [(await rig.record(j.request_id)).attempts for j in jobs] == [0, 0]
    assert await rig.spills.open() == []


async def test_one_spill_that_cannot_be_read_leaves_the_others_to_be_applied(rig):
    first = await rig.enqueue(1)
    await rig.submit()
    second = await rig.enqueue(1)
    await rig.submit()
    one, two = rig.api.batches.values()
    rig.api.end(one.batch.batch_id, [ok(j) for j in first])
    rig.api.end(two.batch.batch_id, [ok(j) for j in second])
    one.rows_error = ValueError("a row the adapter could not read")

    await rig.step()

    assert await rig.statuses(second) == [QueueStatus.COMPLETED]
    assert await rig.statuses(first) == [QueueStatus.PROCESSING]  # tried again next tick


async def test_a_batch_that_fails_for_its_content_spends_an_attempt(rig):
    jobs = await rig.enqueue(1)
    await rig.submit()
    fake = rig.api.only_batch()
    fake.poll = BatchPoll(BatchState.FAILED, "failed", error="the batch was invalid")

    await rig.step()

    record = await rig.record(jobs[0].request_id)
    assert record.attempts == 1
    assert record.status in (QueueStatus.QUEUED, QueueStatus.FAILED)


async def test_a_cancelled_batch_is_counted_once_however_often_it_is_polled(rig):
    jobs = await rig.enqueue(2)
    await rig.submit()
    fake = rig.api.only_batch()
    for job in jobs:  # dead for the engine
        await rig.queue.release(_lease_of(rig, job))
    rig.api.cancel_keeps_running = True
    rig.api.delete_error = BatchAPIUnavailableError("not ended yet")

    for _ in range(3):
        await rig.step(300)

    assert rig.api.cancelled == [fake.batch.batch_id] * 3  # asked again until it ends
    assert rig.jobs_counted("cancelled") == 1
