"""R4: four worker processes over 2,000 requests, no lease expiring: each runs exactly once."""

from __future__ import annotations

import time

import pytest

from common_core.enums import QueueStatus
from tests.integration.crash.support import QueueFactory, enqueue_many, get_many
from tests.support.processes import (
    ProcessPool,
    count_by_request,
    poll_until,
    processes_by_request,
)

pytestmark = pytest.mark.timeout(180)

REQUESTS = 2_000
WORKERS = 4


async def test_four_workers_execute_each_of_2000_requests_exactly_once(
    processes: ProcessPool, make_queue: QueueFactory
) -> None:
    queue = make_queue(lease_seconds=30.0)
    # All four workers are up before the first request, so that all four compete for each.
    began = time.monotonic()
    workers = [
        processes.start(
            f"worker{n}",
            "worker",
            queue_lease_seconds=30,  # far longer than any call: no lease may expire
            queue_poll_interval_seconds=0.1,
            worker_concurrency_per_provider=8,
            mock_latency_ms=1,
            mock_latency_jitter_ms=1,
            circuit_breaker_failure_threshold=1000,
        )
        for n in range(WORKERS)
    ]
    for worker in workers:
        await worker.wait_ready()
    ready = time.monotonic()
    queue_ids = await enqueue_many(queue, REQUESTS)
    ids = [str(q) for q in queue_ids]
    enqueued = time.monotonic()

    async def drained() -> bool:
        for worker in workers:
            assert worker.running(), worker.text()[-3000:]
        stats = await queue.stats()
        return stats.total_depth == 0 and stats.processing == 0

    await poll_until(drained, within=90, interval=0.2, what="the queue to drain")
    finished = time.monotonic()

    records = await get_many(queue, queue_ids)
    statuses = {r.status for r in records if r is not None}
    lost = [qid for qid, r in zip(ids, records, strict=True) if r is None or r.result is None]
    started = processes.events("request_started")
    completed = processes.events("request_completed")
    starts = count_by_request(started)
    by_process = processes_by_request(started)
    twice = [qid for qid in ids if starts[qid] > 1]
    shared = [qid for qid in ids if len(by_process.get(qid, ())) > 1]
    drain = max(e.timestamp for e in completed) - min(e.timestamp for e in started)
    per_worker = {w.name: len(w.events("request_started")) for w in workers}
    print(
        f"\nR4: {REQUESTS} requests, {WORKERS} workers: start-up {ready - began:.1f}s, enqueue "
        f"{enqueued - ready:.1f}s, all done {finished - ready:.1f}s after the first enqueue, "
        f"drain (first start to last "
        f"completion) {drain:.1f}s = {REQUESTS / drain:.0f} requests/s; executions "
        f"{sum(starts.values())}, lost {len(lost)}, executed twice {len(twice)}, started by "
        f"two workers {len(shared)}; per worker {per_worker}"
    )
    assert statuses == {QueueStatus.COMPLETED}
    assert not lost
    assert all(r is not None and r.attempts == 1 for r in records)
    assert set(starts) == set(ids)
    assert not twice, f"executed more than once: {twice[:10]}"
    assert not shared, f"started by two workers: {shared[:10]}"
    assert count_by_request(completed) == dict.fromkeys(ids, 1)
    assert all(per_worker.values()), f"a worker did nothing: {per_worker}"
    assert finished - ready < 60
