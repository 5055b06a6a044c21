"""Issue 17's mixed outcomes through the service process: one Anthropic batch whose rows
succeed, error (final and retryable), expire, are cancelled, are missing, are repeated, or
answer outside the schema; each request ends as the outcome table of documentation/batch.md
says, the ones sent back being re-batched (never called in real time) and completed."""

from __future__ import annotations

import pytest

from tests.integration.crash.batch.drill import (
    event_counts,
    hexes,
    post_batch,
    statuses,
    until_batches,
    until_results,
)
from tests.support.fake_vendors import FakeUpstream
from tests.support.fake_vendors.anthropic_batch_lines import Outcome
from tests.support.processes import ProcessPool, poll_until

pytestmark = pytest.mark.timeout(120)

OUTCOMES: tuple[Outcome, ...] = (
    "succeeded",
    "errored",  # invalid_request_error: final
    "retryable",  # api_error: back to the queue, an attempt spent
    "expired",  # not run: back, unspent
    "canceled",  # not run: back, unspent
    "missing",  # no row: back, unspent
    "duplicate",  # two succeeded rows: one completion
    "schema_invalid",  # INVALID_PROVIDER_RESPONSE: final
)
# The state each request ends in, its error code, and how many batches it was an entry of.
EXPECTED: dict[Outcome, tuple[str, str | None, int]] = {
    "succeeded": ("completed", None, 1),
    "errored": ("failed", "PROVIDER_BAD_REQUEST", 1),
    "retryable": ("completed", None, 2),
    "expired": ("completed", None, 2),
    "canceled": ("completed", None, 2),
    "missing": ("completed", None, 2),
    "duplicate": ("completed", None, 1),
    "schema_invalid": ("failed", "INVALID_PROVIDER_RESPONSE", 1),
}
ENDED = {"completed", "failed", "expired", "cancelled"}


async def test_each_row_outcome_ends_its_request_as_the_table_says(
    batch_processes: ProcessPool, clean_fake_upstream: FakeUpstream
) -> None:
    batches = clean_fake_upstream.anthropic_batches
    service = batch_processes.start("service", "serve")
    await service.wait_ready()
    ids = await post_batch(service, len(OUTCOMES))
    outcome_of = dict(zip(ids, OUTCOMES, strict=True))
    (first,) = await until_batches(clean_fake_upstream, 1)
    batches.end(first, dict(zip(hexes(ids), OUTCOMES, strict=True)))
    ended = {first}

    async def settled() -> list[dict[str, object]] | None:
        for batch_id in batches.ids:  # the re-batched requests: every row succeeds
            if batch_id not in ended:
                batches.end(batch_id)
                ended.add(batch_id)
        bodies = await statuses(service, ids)
        return bodies if all(b["status"] in ENDED for b in bodies) else None

    bodies = await poll_until(settled, within=60, interval=0.1, what="every request ended")

    entries: dict[str, int] = {}
    for create in batches.calls("create"):
        for entry in create.json["requests"]:
            entries[entry["custom_id"]] = entries.get(entry["custom_id"], 0) + 1
    got = {}
    for queue_id, body in zip(ids, bodies, strict=True):
        error = body.get("error") or {}
        code = error.get("code") if isinstance(error, dict) else None
        got[outcome_of[queue_id]] = (body["status"], code, entries[queue_id.replace("-", "")])
    assert got == EXPECTED, bodies
    completed = [i for i in ids if EXPECTED[outcome_of[i]][0] == "completed"]
    assert event_counts(batch_processes, "request_completed", ids) == {
        i: int(i in completed) for i in ids
    }
    results = await until_results(batch_processes, ids)
    assert {i: len(results[i]) for i in ids} == dict.fromkeys(ids, 1)
    assert {results[i][0]["served_via"] for i in completed} == {"batch"}
    assert clean_fake_upstream.requests == [], "no request was sent as a realtime call"
