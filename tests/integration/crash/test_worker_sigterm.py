"""R13: SIGTERM stops claiming, lets calls finish within the grace period, releases the rest."""

from __future__ import annotations

import signal
import time
from uuid import UUID

import pytest

from common_core.enums import QueueStatus
from services.llm_provider_service.models import QueueRecord
from tests.integration.crash.support import QueueFactory, enqueue_many, get_many
from tests.support.processes import ProcessPool, count_by_request, poll_until

pytestmark = pytest.mark.timeout(180)

LATENCY = 4.0  # every call takes this long
GRACE = 2.5
# Timeline (t = when the first calls started): the early calls end at t + 4; the late ones
# start at about t + 2 and would end at t + 6; SIGTERM just after t + 2 gives a grace period
# until about t + 4.6, so the early calls finish with 0.5 s or more to spare and the late
# ones cannot.
LATE_AFTER = 2.0


async def test_sigterm_finishes_what_fits_in_the_grace_period_and_releases_the_rest(
    processes: ProcessPool, make_queue: QueueFactory
) -> None:
    queue = make_queue()
    worker = processes.start(
        "worker",
        "worker",
        queue_lease_seconds=1.5,  # short, yet heart-beating keeps the 4 s calls' leases
        queue_poll_interval_seconds=0.1,
        worker_concurrency_per_provider=8,  # free slots remain: only the stop prevents claims
        worker_shutdown_grace_seconds=GRACE,
        mock_latency_ms=LATENCY * 1000,
        mock_latency_jitter_ms=0,
    )
    await worker.wait_ready()

    def started(ids: list[str]) -> bool:
        return set(ids) <= {e.request_id for e in worker.events("request_started")}

    early = [str(q) for q in await enqueue_many(queue, 2)]
    await poll_until(lambda: started(early), within=10, what="the early calls to start")
    first_started = time.monotonic()
    await poll_until(
        lambda: time.monotonic() - first_started >= LATE_AFTER, within=5, what="the late start"
    )
    late = [str(q) for q in await enqueue_many(queue, 2)]
    await poll_until(lambda: started(late), within=5, what="the late calls to start")

    worker.signal(signal.SIGTERM)
    terminated = time.monotonic()
    await worker.wait_for_log(r"waiting up to [\d.]+s for 4 in-flight requests", within=5)
    after_stop = [str(q) for q in await enqueue_many(queue, 3)]  # must never be claimed
    code = await worker.exited(within=GRACE + 10)
    exit_seconds = time.monotonic() - terminated

    ids = early + late + after_stop
    records = dict(zip(ids, await get_many(queue, [UUID(i) for i in ids]), strict=True))
    starts = count_by_request(worker.events("request_started"))
    completions = count_by_request(worker.events("request_completed"))
    print(
        f"\nR13: SIGTERM {terminated - first_started:.1f}s after the first calls, 4 calls "
        f"in flight; exit code {code} after {exit_seconds:.2f}s (grace {GRACE}s); completed "
        f"{sum(1 for i in early if completions[i])} of the 2 that fit, released "
        f"{sum(1 for i in late if _state(records[i]) == ('queued', 0))} of the 2 that could "
        f"not; claimed after the stop {sum(starts[i] for i in after_stop)}"
    )
    assert code == 0, worker.text()[-3000:]
    assert GRACE - 0.2 <= exit_seconds <= GRACE + 3.0
    for i in early:
        assert _state(records[i]) == ("completed", 1), records[i]
        assert completions[i] == 1
    for i in late:  # released: back in the queue, the attempt not spent
        assert _state(records[i]) == ("queued", 0), records[i]
        assert completions[i] == 0
    for i in after_stop:
        assert _state(records[i]) == ("queued", 0), records[i]
        assert starts[i] == 0
    assert "released 2 requests that did not finish in time" in worker.text()
    assert (await queue.stats()).processing == 0  # no lease left behind to expire

    # Nothing released is lost: a fresh worker runs each of them once.
    successor = processes.start(
        "successor", "worker", queue_poll_interval_seconds=0.1, mock_latency_ms=5
    )
    waiting = [UUID(i) for i in late + after_stop]

    async def done() -> bool:
        return all(
            r is not None and r.status is QueueStatus.COMPLETED
            for r in await get_many(queue, waiting)
        )

    await poll_until(done, within=30, what="the successor to run the released requests")
    assert count_by_request(successor.events("request_completed")) == dict.fromkeys(
        late + after_stop, 1
    )
    assert {r.attempts for r in await get_many(queue, waiting) if r} == {1}


def _state(record: QueueRecord | None) -> tuple[str, int]:
    assert record is not None
    return record.status.value, record.attempts
