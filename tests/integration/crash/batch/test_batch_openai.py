"""Issue 17 through OpenAI's file-based Batch API (files + batches, the real openai SDK):
the service process is SIGKILLed while the fake holds its create, which the fake then makes
(its answer lost) or not; a new process adopts the batch tagged with the spill (`find`), or
releases the requests unspent after BATCH_SUBMIT_TIMEOUT_SECONDS and sends them again. Every
batch made is ended with all rows succeeded, yet each request completes exactly once."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import pytest

from tests.integration.crash.batch.drill import (
    event_counts,
    post_batch,
    statuses,
    until_results,
)
from tests.support.fake_vendors import FakeUpstream
from tests.support.processes import ProcessPool, poll_until

pytestmark = pytest.mark.timeout(150)

REQUESTS = 4
ENDED = {"completed", "failed", "expired", "cancelled"}


async def test_a_kill_during_an_unmade_openai_create_resubmits_once(
    batch_processes: ProcessPool, clean_fake_upstream: FakeUpstream
) -> None:
    openai = clean_fake_upstream.openai_batches
    before = batch_processes.start("before", "serve")
    await before.wait_ready()
    openai.controls.hold("create")  # the input file is uploaded; the create never answers
    ids = await post_batch(before, REQUESTS, provider="openai")
    assert await asyncio.to_thread(openai.controls.arrived("create").wait, 30.0)
    before.signal(signal.SIGKILL)
    before.kill()
    openai.controls.release("create")  # its client is gone: no batch is made

    after = batch_processes.start("after", "serve")
    await after.wait_ready()
    ended: set[str] = set()

    async def settled() -> list[dict[str, Any]] | None:
        for batch_id in list(openai.batches):  # every batch made: all its rows succeed
            if batch_id not in ended:
                while openai.advance(batch_id) != "finalizing":
                    pass
                openai.end(batch_id)
                ended.add(batch_id)
        bodies = await statuses(after, ids)
        return bodies if all(b["status"] in ENDED for b in bodies) else None

    bodies = await poll_until(settled, within=60, interval=0.1, what="every request ended")
    assert [b["status"] for b in bodies] == ["completed"] * REQUESTS, bodies
    assert {b["result"]["served_via"] for b in bodies} == {"batch"}
    once = dict.fromkeys(ids, 1)
    assert event_counts(batch_processes, "request_completed", ids) == once
    results = await until_results(batch_processes, ids)
    assert {i: len(results[i]) for i in ids} == once
    made = list(openai.batches)
    creates = openai.controls.calls("create")
    print(f"\nOpenAI kill at create: {len(made)} batch(es) made, {len(creates)} create(s)")
    assert 1 <= len(made) <= 2, "adopted (one batch), or re-submitted once (two)"
    assert len(creates) == len(openai.controls.calls("upload")) >= len(made)
    tags = {create.json["metadata"]["spill_id"] for create in creates}
    assert len(tags) == len(creates), "a re-submission is a new spill"
    assert not before.events("request_completed")
