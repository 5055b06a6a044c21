"""R11: redis-server SIGKILLed and restarted mid-run (AOF, `appendfsync always`) loses no
acknowledged enqueue, lease or result, and the queue drains afterwards."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from uuid import UUID

import httpx
import pytest
from redis import exceptions as redis_errors
from redis.asyncio import Redis

from common_core.enums import QueueStatus
from services.llm_provider_service.errors import QueueUnavailableError
from services.llm_provider_service.redis.keys import RedisKeys
from tests.integration.crash.support import QueueFactory, enqueue_many, get_many
from tests.support.processes import ProcessPool, count_by_request, poll_until
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.timeout(180)

LEASE = 4.0  # longer than the outage, so a lease written before the kill is still held after
DOWN = 1.0  # seconds between the kill and the restart
BEFORE_KILL = 60  # acknowledged enqueues to collect before the kill, and again after the restart
SUBMITTERS = 4
BODY = {
    "user_prompt": "Which essay answers the question better?",
    "essay_a": "Essay one: a careful argument.",
    "essay_b": "Essay two: a lively story.",
    "processing_mode": "async",
}


@dataclass
class Submissions:
    """What the API answered: 202s (acknowledged), other statuses, transport failures."""

    acknowledged: list[UUID] = field(default_factory=list)
    refused: dict[int, int] = field(default_factory=dict)
    transport_errors: int = 0


async def submit_until(stop: asyncio.Event, client: httpx.AsyncClient, out: Submissions) -> None:
    while not stop.is_set():
        try:
            response = await client.post("/api/v1/comparison", json=BODY)
        except httpx.TransportError:
            out.transport_errors += 1
            await asyncio.sleep(0.05)
            continue
        if response.status_code == 202:
            out.acknowledged.append(UUID(response.json()["queue_id"]))
            await asyncio.sleep(0.02)  # a steady stream, not a flood the worker cannot match
        else:
            out.refused[response.status_code] = out.refused.get(response.status_code, 0) + 1
            await asyncio.sleep(0.05)  # a polite client backs off (the 503 says Retry-After)


@dataclass(frozen=True)
class Snapshot:
    fence: int
    records: dict[str, dict[str, str]]
    leases: dict[str, float]


async def snapshot(redis: Redis, keys: RedisKeys, ids: list[UUID]) -> Snapshot:
    """The fence, the records of `ids` and the lease set, read in one transaction."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.get(keys.fence)
        pipe.zrange(keys.leases, 0, -1, withscores=True)
        for queue_id in ids:
            pipe.hgetall(keys.request(str(queue_id)))
        fence, leases, *rows = await pipe.execute()
    return Snapshot(
        fence=int(fence or 0),
        records={str(q): row for q, row in zip(ids, rows, strict=True)},
        leases={member: score for member, score in leases},
    )


async def snapshot_after_restart(redis: Redis, keys: RedisKeys, ids: list[UUID]) -> Snapshot:
    async def attempt() -> Snapshot | None:
        try:
            return await snapshot(redis, keys, ids)
        except (redis_errors.ConnectionError, redis_errors.BusyLoadingError):
            return None

    return await poll_until(attempt, within=10, what="Redis to answer after the restart")


def compare(before: Snapshot, after: Snapshot) -> tuple[int, int, list[str]]:
    """(leases that survived, results unchanged, problems): everything `before` held must
    still be there after the restart, or have moved on, never back."""
    problems: list[str] = []
    held = results = 0
    if after.fence < before.fence:
        problems.append(f"fence went back from {before.fence} to {after.fence}")
    for queue_id, old in before.records.items():
        new = after.records.get(queue_id)
        if not new:
            problems.append(f"{queue_id}: record lost")
            continue
        if int(new["attempts"]) < int(old["attempts"]):
            problems.append(f"{queue_id}: attempts went back {old['attempts']}->{new['attempts']}")
        if old["status"] == "completed":
            if new["status"] != "completed" or new.get("result") != old.get("result"):
                problems.append(f"{queue_id}: completed result lost: {new}")
            else:
                results += 1
        if old["status"] == "processing" and new["status"] == "processing":
            # Still leased: by the same token and still in the lease set (else no reaper
            # would ever find it), or by a newer claim; never by an older token.
            if int(new["token"]) < int(old["token"]):
                problems.append(f"{queue_id}: lease token went back: {old} -> {new}")
            elif queue_id not in after.leases:
                problems.append(f"{queue_id}: leased but missing from the lease set")
            elif new["token"] == old["token"]:
                held += 1
        elif old["status"] == "processing" and new.get("completed_by") == old["token"]:
            # Completed by the very lease the snapshot saw: `complete` succeeds only for the
            # current token, so that lease survived the restart too. (Its holder may finish
            # between the restart and this read, now that stale connections are retried.)
            held += 1
    return held, results, problems


async def test_killing_redis_loses_no_acknowledged_enqueue_lease_or_result(
    processes: ProcessPool,
    redis_server: RedisServer,
    redis_client: Redis,
    make_queue: QueueFactory,
    prefix: str,
) -> None:
    processes.defaults = {
        "queue_lease_seconds": LEASE,
        "queue_poll_interval_seconds": 0.1,
        "queue_max_attempts": 20,
        "queue_retry_base_seconds": 0.1,
        "queue_retry_max_seconds": 0.5,
        "mock_latency_ms": 300,  # calls in flight at the snapshot are still in flight at the kill
        "mock_latency_jitter_ms": 0,
    }
    api = processes.start("api", "serve", worker_enabled=False)
    worker = processes.start("worker", "worker", worker_concurrency_per_provider=8)
    await api.wait_ready()
    await worker.wait_ready()
    keys, queue = RedisKeys(prefix), make_queue()
    out, stop = Submissions(), asyncio.Event()
    async with httpx.AsyncClient(base_url=api.base_url, timeout=10.0) as client:
        tasks = [asyncio.create_task(submit_until(stop, client, out)) for _ in range(SUBMITTERS)]
        try:

            async def ready_to_kill() -> Snapshot | None:
                if len(out.acknowledged) < BEFORE_KILL:
                    return None
                state = await snapshot(redis_client, keys, list(out.acknowledged))
                done = any(r.get("status") == "completed" for r in state.records.values())
                return state if done and state.leases else None

            before = await poll_until(ready_to_kill, within=30, what="results and leases")
            await asyncio.to_thread(redis_server.kill)
            killed = time.monotonic()
            acknowledged_at_kill = len(out.acknowledged)
            await asyncio.sleep(DOWN)  # the outage itself
            await asyncio.to_thread(redis_server.start)
            restarted, restarted_wall = time.monotonic(), time.time()
            seen = [UUID(q) for q in before.records]
            after = await snapshot_after_restart(redis_client, keys, seen)
            await poll_until(
                lambda: len(out.acknowledged) >= acknowledged_at_kill + BEFORE_KILL,
                within=30,
                what="the API to acknowledge requests again",
            )
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)

    acknowledged = list(out.acknowledged)

    async def drained() -> bool:
        records = await get_many(queue, acknowledged)
        return all(r is not None and r.status is QueueStatus.COMPLETED for r in records)

    await poll_until(drained, within=60, interval=0.2, what="every acknowledged request done")
    drained_after = time.monotonic() - restarted
    records = await get_many(queue, acknowledged)
    lost = [q for q, r in zip(acknowledged, records, strict=True) if r is None]
    completed = [r for r in records if r is not None and r.status is QueueStatus.COMPLETED]
    starts = count_by_request(processes.events("request_started"))
    twice = [q for q in acknowledged if starts[str(q)] == 2]
    more = [q for q in acknowledged if starts[str(q)] > 2]
    stored = sum(1 for _ in [k async for k in redis_client.scan_iter(match=keys.request("*"))])
    held, results, problems = compare(before, after)
    resumed = [e for e in worker.events("request_started") if e.timestamp > restarted_wall]
    print(
        f"\nR11: acknowledged {len(acknowledged)} ({acknowledged_at_kill} before the kill), "
        f"lost {len(lost)}, completed {len(completed)}, executed twice {len(twice)}, more than "
        f"twice {len(more)}; refused while down {out.refused} + {out.transport_errors} transport "
        f"errors; records stored {stored} (so {stored - len(acknowledged)} were kept although "
        f"refused); snapshot before the kill: {len(before.records)} records, "
        f"{len(before.leases)} leases (surviving the restart: {held}), {results} "
        f"completed results unchanged; Redis down {restarted - killed:.1f}s; drained "
        f"{drained_after:.1f}s after the restart"
    )
    assert not problems, problems[:10]
    assert not lost
    assert len(completed) == len(acknowledged)
    # At least once, and at most twice: only the calls in flight at the kill run twice (the
    # test below checks that calls made after the restart are not repeated).
    assert not more, "at most one extra execution"
    assert held >= 1, "the snapshot must hold a lease that survived the restart"
    assert results >= 1, "the snapshot must hold a completed result"
    assert set(out.refused) <= {503}, out.refused
    assert resumed, "the worker must work again after the restart"
    assert api.running()
    assert worker.running()


async def test_a_call_made_after_a_redis_restart_keeps_its_result(
    processes: ProcessPool, redis_server: RedisServer, make_queue: QueueFactory
) -> None:
    slots = 8
    queue = make_queue()
    worker = processes.start(
        "worker",
        "worker",
        queue_lease_seconds=3,
        queue_poll_interval_seconds=0.1,
        worker_concurrency_per_provider=slots,
        mock_latency_ms=300,
        mock_latency_jitter_ms=0,
    )
    await worker.wait_ready()

    async def completed(ids: list[UUID]) -> bool:
        records = await get_many(queue, ids)
        return all(r is not None and r.status is QueueStatus.COMPLETED for r in records)

    # `slots` results recorded at once leave as many connections in the worker's pool.
    warm_up = await enqueue_many(queue, slots)
    await poll_until(lambda: completed(warm_up), within=20, what="the warm-up")
    await asyncio.to_thread(redis_server.restart)  # SIGKILL, then start on the same AOF

    async def after_restart() -> list[UUID] | None:
        try:
            return await enqueue_many(queue, slots)
        except QueueUnavailableError:
            return None  # the test's own pooled connections are stale too

    ids = await poll_until(after_restart, within=10, what="an enqueue after the restart")
    await poll_until(lambda: completed(ids), within=30, what="the requests after the restart")
    starts = count_by_request(worker.events("request_started"))
    twice = [q for q in ids if starts[str(q)] > 1]
    dropped = worker.text().count("queue write failed")
    print(
        f"\nR11 (stale connections): {slots} calls made after the restart, executed twice "
        f"{len(twice)}, failed queue writes logged {dropped}"
    )
    assert not twice, f"{len(twice)} of {slots} calls made after the restart ran twice"
