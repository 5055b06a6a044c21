"""R3: a worker killed with SIGKILL mid-call loses nothing; another reclaims and completes."""

from __future__ import annotations

import signal
import time

import pytest

from common_core.enums import QueueStatus
from tests.integration.crash.support import QueueFactory, enqueue_many, get_many
from tests.support.processes import ProcessPool, count_by_request, poll_until

pytestmark = pytest.mark.timeout(180)

LEASE = 1.0
POLL = 0.1
MARGIN = 1.0  # process scheduling on a loaded machine, log flushing, this test's own polling
LATENCY_MS = 3000
IN_FLIGHT = 4
REQUESTS = 10


async def test_a_sigkilled_workers_requests_are_reclaimed_within_a_lease(
    processes: ProcessPool, make_queue: QueueFactory
) -> None:
    processes.defaults = {
        "queue_lease_seconds": LEASE,
        "queue_poll_interval_seconds": POLL,
        "mock_latency_ms": LATENCY_MS,
        "mock_latency_jitter_ms": 0,
    }
    # Both workers are up before any request exists; the rescuer is frozen (SIGSTOP) while
    # the victim claims, so the victim gets exactly IN_FLIGHT calls whatever start-up costs.
    victim = processes.start("victim", "worker", worker_concurrency_per_provider=IN_FLIGHT)
    rescuer = processes.start("rescuer", "worker", worker_concurrency_per_provider=4 * REQUESTS)
    await victim.wait_ready()
    await rescuer.wait_ready()
    rescuer.signal(signal.SIGSTOP)
    queue = make_queue()
    queue_ids = await enqueue_many(queue, REQUESTS)
    ids = [str(q) for q in queue_ids]

    def victims_calls() -> list[str] | None:
        started = sorted({e.request_id for e in victim.events("request_started")})
        return started if len(started) == IN_FLIGHT else None

    in_flight = await poll_until(victims_calls, within=30, what="the victim's calls to start")
    rescuer.signal(signal.SIGCONT)
    # The rescuer takes the requests still queued, and has room left for the victim's.
    await poll_until(
        lambda: len(rescuer.events("request_started")) == REQUESTS - IN_FLIGHT,
        within=10,
        what="the rescuer to take the queued requests",
    )
    assert victim.running(), "the victim finished before it could be killed"
    assert not victim.events("request_completed"), "calls must still be in flight at the kill"

    victim.signal(signal.SIGKILL)
    killed = time.monotonic()

    def reclaimed() -> bool:
        return set(in_flight) <= {e.request_id for e in rescuer.events("request_started")}

    await poll_until(reclaimed, within=LEASE + POLL + 10, interval=0.02, what="the reclaim")
    reclaim = time.monotonic() - killed

    async def all_completed() -> bool:
        records = await get_many(queue, queue_ids)
        return all(r is not None and r.status is QueueStatus.COMPLETED for r in records)

    await poll_until(all_completed, within=LATENCY_MS / 1000 + 15, what="every request done")
    records = await get_many(queue, queue_ids)
    lost = [i for i, r in zip(ids, records, strict=True) if r is None or r.result is None]
    starts = count_by_request(processes.events("request_started"))
    completions = count_by_request(processes.events("request_completed"))
    twice = sorted(i for i in ids if starts[i] > 1)
    print(
        f"\nR3: queued {REQUESTS}, in flight at SIGKILL {len(in_flight)}, lost {len(lost)}, "
        f"executed twice {len(twice)} (started twice, completed once each), reclaimed "
        f"{reclaim:.2f}s after the kill (bound: lease {LEASE}s + poll {POLL}s + margin {MARGIN}s)"
    )
    assert not lost
    assert reclaim <= LEASE + POLL + MARGIN
    assert twice == in_flight, "only the killed worker's calls run again, each once more"
    assert completions == dict.fromkeys(ids, 1)
    assert {r.attempts for r, i in zip(records, ids, strict=True) if r and i in in_flight} == {2}
