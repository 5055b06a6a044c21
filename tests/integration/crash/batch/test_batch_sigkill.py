"""Issue 17's crash drills: the service process is SIGKILLed while the Anthropic fake holds
its create (the batch made, the answer not yet read), its poll, or its results download; a
new process on the same Redis finishes the work. Every request completes exactly once,
counted from the queue's records and from the result events, and none is lost."""

from __future__ import annotations

import asyncio
import signal

import pytest

from tests.integration.crash.batch.drill import (
    custom_ids,
    event_counts,
    hexes,
    post_batch,
    until_batches,
    until_results,
    until_statuses,
)
from tests.support.fake_vendors import FakeUpstream
from tests.support.fake_vendors.anthropic_batch_wire import Endpoint
from tests.support.processes import ProcessPool, ServiceProcess, poll_until

pytestmark = pytest.mark.timeout(150)

REQUESTS = 5
ENDED = {"completed", "failed", "expired", "cancelled"}


async def held(fake: FakeUpstream, endpoint: Endpoint) -> None:
    """Returns once a request to `endpoint` is being held by the Anthropic fake."""
    assert await asyncio.to_thread(fake.anthropic_batches.wait_held, endpoint, 30.0), endpoint


def kill(service: ServiceProcess) -> None:
    assert service.running(), service.text()[-3000:]
    service.signal(signal.SIGKILL)
    service.kill()  # reaped


async def assert_completed_once(pool: ProcessPool, after: ServiceProcess, ids: list[str]) -> None:
    """Every request completed, one result each, in the queue and in the events."""
    bodies = await until_statuses(after, ids, ENDED, within=60)
    assert [b["status"] for b in bodies] == ["completed"] * len(ids), bodies
    assert all(b["result"]["served_via"] == "batch" for b in bodies), bodies
    once = dict.fromkeys(ids, 1)
    assert event_counts(pool, "request_completed", ids) == once
    results = await until_results(pool, ids)
    assert {i: len(results.get(i, [])) for i in ids} == once


async def test_a_kill_between_create_and_recording_adopts_the_batch(
    batch_processes: ProcessPool, clean_fake_upstream: FakeUpstream
) -> None:
    fake = clean_fake_upstream
    batches = fake.anthropic_batches
    before = batch_processes.start("before", "serve")
    await before.wait_ready()
    batches.hold("create")  # the batch is made; its answer never reaches the service
    ids = await post_batch(before, REQUESTS)
    await held(fake, "create")
    (made,) = batches.ids
    kill(before)
    batches.release("create")

    after = batch_processes.start("after", "serve")
    await after.wait_ready()
    # The new process finds the batch (`find`, by list) and polls it as its own.
    await poll_until(
        lambda: batches.calls("retrieve") or None, within=60, what="the adopted batch's poll"
    )
    assert len(batches.calls("list")) >= 1
    batches.end(made)

    await assert_completed_once(batch_processes, after, ids)
    assert batches.ids == [] or batches.ids == [made]  # deleted once applied (or about to be)
    assert len(batches.calls("create")) == 1, "adopted, never re-submitted"
    assert sorted(custom_ids_seen(fake)) == sorted(hexes(ids))
    assert not before.events("request_completed")


async def test_a_kill_while_polling_loses_nothing(
    batch_processes: ProcessPool, clean_fake_upstream: FakeUpstream
) -> None:
    fake = clean_fake_upstream
    batches = fake.anthropic_batches
    before = batch_processes.start("before", "serve")
    await before.wait_ready()
    batches.hold("retrieve")
    ids = await post_batch(before, REQUESTS)
    (made,) = await until_batches(fake, 1)
    await held(fake, "retrieve")
    kill(before)
    batches.release("retrieve")
    batches.end(made)

    after = batch_processes.start("after", "serve")
    await after.wait_ready()

    await assert_completed_once(batch_processes, after, ids)
    assert len(batches.calls("create")) == 1
    assert sorted(custom_ids(fake, made) if made in batches.ids else custom_ids_seen(fake)) == (
        sorted(hexes(ids))
    )
    assert not before.events("request_completed")


async def test_a_kill_during_ingest_completes_each_request_once(
    batch_processes: ProcessPool, clean_fake_upstream: FakeUpstream
) -> None:
    fake = clean_fake_upstream
    batches = fake.anthropic_batches
    before = batch_processes.start("before", "serve")
    await before.wait_ready()
    ids = await post_batch(before, REQUESTS)
    (made,) = await until_batches(fake, 1)
    batches.hold("results")
    batches.end(made)
    await held(fake, "results")
    kill(before)
    batches.release("results")

    after = batch_processes.start("after", "serve")
    await after.wait_ready()

    await assert_completed_once(batch_processes, after, ids)
    assert len(batches.calls("create")) == 1
    assert len(batches.calls("results")) >= 2  # the killed download, then the new one
    assert not before.events("request_completed")


def custom_ids_seen(fake: FakeUpstream) -> list[str]:
    """The custom ids of every create the Anthropic fake received."""
    return [
        str(entry["custom_id"])
        for create in fake.anthropic_batches.calls("create")
        for entry in create.json["requests"]
    ]
