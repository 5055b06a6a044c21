"""Issue 17's dead entries, with the service as a process: a batch request cancelled with
DELETE /api/v1/status/<id>, or past its TTL, while it sits in an Anthropic batch is never
completed; its row is dropped when the batch ends; and once every entry of the batch is dead
the engine cancels the provider batch, then deletes it once it has ended."""

from __future__ import annotations

import httpx
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
from tests.support.processes import ProcessPool, poll_until

pytestmark = pytest.mark.timeout(120)

REQUESTS = 3


async def assert_one_error_result(pool: ProcessPool, ids: list[str], code: str) -> None:
    """Each request's one result event is the error `code`, never a judgement."""
    results = await until_results(pool, ids)
    assert {i: len(results[i]) for i in ids} == dict.fromkeys(ids, 1)
    for queue_id in ids:
        (event,) = results[queue_id]
        assert event["winner"] is None
        assert event["error_detail"]["code"] == code, event


TTL = 3  # seconds: the batch is made well within it, and outlives it


async def test_requests_cancelled_while_batched_are_never_completed(
    batch_processes: ProcessPool, clean_fake_upstream: FakeUpstream
) -> None:
    batches = clean_fake_upstream.anthropic_batches
    service = batch_processes.start("service", "serve")
    await service.wait_ready()
    ids = await post_batch(service, REQUESTS)
    (made,) = await until_batches(clean_fake_upstream, 1)
    assert sorted(custom_ids(clean_fake_upstream, made)) == sorted(hexes(ids))

    async with httpx.AsyncClient(base_url=service.base_url, timeout=10.0) as http:
        answers = [await http.delete(f"/api/v1/status/{i}") for i in ids]
    assert [a.status_code for a in answers] == [200] * REQUESTS, [a.text for a in answers]
    assert {a.json()["status"] for a in answers} == {"cancelled"}

    await poll_until(lambda: batches.calls("cancel") or None, within=30, what="the cancel")
    batches.end(made, dict.fromkeys(hexes(ids), "succeeded"))  # rows for every entry
    await poll_until(lambda: batches.ids == [], within=30, what="the batch deleted")

    bodies = await until_statuses(service, ids, {"cancelled", "completed"})
    assert [(b["status"], b["result"]) for b in bodies] == [("cancelled", None)] * REQUESTS
    assert event_counts(batch_processes, "request_completed", ids) == dict.fromkeys(ids, 0)
    await assert_one_error_result(batch_processes, ids, "REQUEST_CANCELLED")
    assert [c.path for c in batches.calls("cancel")] == [f"/v1/messages/batches/{made}/cancel"]
    # Every entry was settled dead: the rows are never even read, the batch only deleted.
    assert batches.calls("results") == []
    assert len(batches.calls("delete")) >= 1


async def test_requests_whose_ttl_passes_while_batched_expire_and_are_never_completed(
    batch_processes: ProcessPool, clean_fake_upstream: FakeUpstream
) -> None:
    batches = clean_fake_upstream.anthropic_batches
    service = batch_processes.start("service", "serve")
    await service.wait_ready()
    ids = await post_batch(service, REQUESTS, ttl_seconds=TTL)
    (made,) = await until_batches(clean_fake_upstream, 1)

    await poll_until(lambda: batches.calls("cancel") or None, within=30, what="the cancel")
    batches.end(made, dict.fromkeys(hexes(ids), "succeeded"))
    await poll_until(lambda: batches.ids == [], within=30, what="the batch deleted")

    # The queue's reaper expires each request once its lease (no longer heartbeated) lapses.
    bodies = await until_statuses(service, ids, {"expired", "completed"}, within=60)
    assert [(b["status"], b["result"]) for b in bodies] == [("expired", None)] * REQUESTS
    assert event_counts(batch_processes, "request_completed", ids) == dict.fromkeys(ids, 0)
    await assert_one_error_result(batch_processes, ids, "REQUEST_EXPIRED")
    assert len(batches.calls("cancel")) == 1
    assert len(batches.calls("create")) == 1
