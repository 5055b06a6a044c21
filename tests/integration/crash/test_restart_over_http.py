"""End to end over HTTP: requests queued during a provider outage survive a restart of the
service (SIGTERM, then a new process on the same Redis) and each completes exactly once.

The processes run with ENVIRONMENT=testing and LLM_PROVIDER_SERVICE_ENABLE_QUEUE_PERSISTENCE=true
rather than production: production refuses the mock provider (the outage drill needs it), and
running this story against the real vendor adapters is another issue.
"""

from __future__ import annotations

import signal
import time
from uuid import UUID

import httpx
import pytest

from common_core.enums import QueueStatus
from tests.integration.crash.support import QueueFactory, get_many
from tests.support.processes import ProcessPool, count_by_request, poll_until

pytestmark = pytest.mark.timeout(180)

REQUESTS = 20
GRACE = 2.0
BODY = {
    "user_prompt": "Which essay answers the question better?",
    "essay_a": "Essay one: a careful argument.",
    "essay_b": "Essay two: a lively story.",
}


async def test_requests_queued_in_an_outage_complete_once_after_a_service_restart(
    processes: ProcessPool, make_queue: QueueFactory
) -> None:
    processes.defaults = {
        "queue_lease_seconds": 5,
        "queue_poll_interval_seconds": 0.1,
        "queue_retry_base_seconds": 0.2,
        "queue_retry_max_seconds": 1.0,
        "queue_max_attempts": 50,
        "circuit_breaker_failure_threshold": 3,
        "circuit_breaker_reset_timeout_seconds": 1.0,
        "worker_shutdown_grace_seconds": GRACE,
        "mock_latency_ms": 5,
        "mock_latency_jitter_ms": 2,
    }
    before = processes.start("before", "serve")
    await before.wait_ready()
    async with httpx.AsyncClient(base_url=before.base_url, timeout=10.0) as client:
        fault = await client.post("/api/v1/dev/mock-fault", json={"error_rate": 1.0})
        assert fault.status_code == 200, fault.text
        answers = [await client.post("/api/v1/comparison", json=BODY) for _ in range(REQUESTS)]
        assert [a.status_code for a in answers] == [202] * REQUESTS, [a.text for a in answers]
        ids = [a.json()["queue_id"] for a in answers]
        statuses = {(await client.get(f"/api/v1/status/{i}")).json()["status"] for i in ids}
        assert statuses <= {"queued", "processing"}
        # Let the outage last until the worker has tried (and failed) queued requests too.
        await poll_until(
            lambda: sum(e.data["from_queue"] for e in before.events("request_started")) >= 3,
            within=20,
            what="queued attempts failing during the outage",
        )

    before.signal(signal.SIGTERM)
    stopping = time.monotonic()
    assert await before.exited(within=GRACE + 10) == 0, before.text()[-3000:]
    stop_seconds = time.monotonic() - stopping
    assert "llm_provider_service stopped" in before.text()
    queue = make_queue()
    records = await get_many(queue, [UUID(i) for i in ids])
    assert all(r is not None and r.status is QueueStatus.QUEUED for r in records), records
    attempts_before = sum(r.attempts for r in records if r is not None)

    after = processes.start("after", "serve")  # a new process; its mock is healthy
    restarted = time.monotonic()
    await after.wait_ready()
    async with httpx.AsyncClient(base_url=after.base_url, timeout=10.0) as client:

        async def all_completed() -> list[dict[str, object]] | None:
            bodies = [(await client.get(f"/api/v1/status/{i}")).json() for i in ids]
            done = all(b["status"] == "completed" for b in bodies)
            return bodies if done else None

        bodies = await poll_until(all_completed, within=60, interval=0.2, what="the backlog")
    drained = time.monotonic() - restarted

    completions = count_by_request(processes.events("request_completed"))
    starts_after = count_by_request(after.events("request_started"))
    starts_before = count_by_request(before.events("request_started"))
    lost = [i for i, b in zip(ids, bodies, strict=True) if not b.get("result")]
    print(
        f"\nHTTP restart: {REQUESTS} requests answered 202 during the outage; failed provider "
        f"calls before the restart {sum(starts_before[i] for i in ids)} (queue attempts "
        f"recorded {attempts_before}); SIGTERM to exit {stop_seconds:.1f}s; after the restart: "
        f"completed {sum(1 for b in bodies if b['status'] == 'completed')}, lost {len(lost)}, "
        f"executions in the new "
        f"process {sum(starts_after[i] for i in ids)}, successful executions overall "
        f"{sum(completions[i] for i in ids)}; drained {drained:.1f}s after the new process "
        f"started"
    )
    assert not lost
    for queue_id, body in zip(ids, bodies, strict=True):
        result = body["result"]
        assert isinstance(result, dict), body
        assert result["request_id"] == queue_id, body
        assert result["winner"] in {"Essay A", "Essay B"}
    assert {i: completions[i] for i in ids} == dict.fromkeys(ids, 1)
    assert {i: starts_after[i] for i in ids} == dict.fromkeys(ids, 1)
    assert not before.events("request_completed")
