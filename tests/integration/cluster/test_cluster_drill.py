"""Issue 16: the outage drill on a real three-master Redis Cluster. Requests for two providers
whose queue shards live on different masters are queued through a provider outage; one
master is SIGKILLed while its shard holds waiting work and calls are in flight, and restarted;
every acknowledged request completes exactly once, and no provider call is made twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from common_core.enums import LLMProviderType
from tests.integration.cluster.drill import (
    Layout,
    Submissions,
    completions,
    delete_prefix,
    ensure_masters_running,
    find_layout,
    vendor_answers,
)
from tests.support.fake_vendors import FakeUpstream, clean_fake_upstream, fake_upstream
from tests.support.processes import (
    Event,
    ProcessPool,
    ServiceProcess,
    count_by_request,
    poll_until,
)
from tests.support.redis_server import RedisClusterServer

pytestmark = pytest.mark.timeout(120)

DOWN = LLMProviderType.ANTHROPIC  # its queue shard's master is killed
UP = LLMProviderType.OPENAI  # its queue shard is on another master
SLOTS = 3  # concurrent calls per provider per worker: fewer than the requests, so some wait
QUEUED_EACH = 10  # requests per provider queued through the provider outage
DOWN_EACH = 4  # requests per provider sent while the master is down
SLOW_CALL = 1.5  # seconds a recovering vendor takes to answer: calls in flight at the kill
LEASE = 30.0  # longer than the outage and the restart, so leases held at the kill survive


__all__ = ["clean_fake_upstream", "fake_upstream"]  # fixtures of the fake vendors


@pytest.fixture
def running_cluster(redis_cluster: RedisClusterServer) -> Iterator[RedisClusterServer]:
    """The session's cluster, every master running again after the test (the drill leaves
    one SIGKILLed if it fails between the kill and the restart)."""
    try:
        yield redis_cluster
    finally:
        ensure_masters_running(redis_cluster)


@pytest.fixture
def layout(running_cluster: RedisClusterServer) -> Layout:
    return find_layout(running_cluster, DOWN, UP)


@pytest.fixture
async def processes(
    running_cluster: RedisClusterServer,
    layout: Layout,
    clean_fake_upstream: FakeUpstream,
    tmp_path: Path,
) -> AsyncIterator[ProcessPool]:
    """Service processes on the cluster under the layout's prefix, both vendors pointed at
    the fake; afterwards the processes are killed and the prefix's keys deleted."""
    fake = clean_fake_upstream
    pool = ProcessPool(tmp_path, running_cluster.url, layout.prefix)
    pool.defaults = {
        "redis_cluster": True,
        "openai_api_key": "sk-drill",
        "openai_base_url": fake.openai_base_url,
        "anthropic_api_key": "sk-ant-drill",
        "anthropic_base_url": fake.anthropic_base_url,
        "queue_lease_seconds": LEASE,
        "queue_poll_interval_seconds": 0.1,
        "queue_max_attempts": 1000,
        "queue_retry_base_seconds": 0.1,
        "queue_retry_max_seconds": 0.5,
        "circuit_breaker_failure_threshold": 3,
        "circuit_breaker_reset_timeout_seconds": 0.5,
        "worker_concurrency_per_provider": SLOTS,
    }
    try:
        yield pool
    finally:
        pool.close()
        await asyncio.to_thread(ensure_masters_running, running_cluster)
        await delete_prefix(running_cluster.url, layout.prefix)


@pytest.fixture
def slow_vendor(clean_fake_upstream: FakeUpstream) -> FakeUpstream:
    """The fake vendors, whose `timeout` fault answers (normally) after `SLOW_CALL` s (the
    fixture it comes from restores the default afterwards)."""
    clean_fake_upstream.hang_seconds = SLOW_CALL
    return clean_fake_upstream


def answered_calls(workers: list[ServiceProcess]) -> list[Event]:
    """The workers' `request_completed` events: provider calls that returned an answer."""
    return [event for worker in workers for event in worker.events("request_completed")]


async def all_completed(http: httpx.AsyncClient, ids: list[str]) -> bool:
    """True once GET /status says completed for every id (a 503 counts as not yet)."""
    answers = await asyncio.gather(*(http.get(f"/api/v1/status/{q}") for q in ids))
    return all(a.status_code == 200 and a.json()["status"] == "completed" for a in answers)


async def test_a_master_killed_mid_outage_loses_nothing_and_runs_nothing_twice(
    running_cluster: RedisClusterServer,
    layout: Layout,
    processes: ProcessPool,
    slow_vendor: FakeUpstream,
) -> None:
    fake = slow_vendor
    fake.fail(DOWN.value, "server_error")  # the provider outage, for both providers
    fake.fail(UP.value, "server_error")
    api = processes.start("api", "serve", worker_enabled=False)
    workers = [processes.start(f"worker{i}", "worker") for i in (1, 2)]
    for process in (api, *workers):
        await process.wait_ready()
    out = Submissions()
    async with httpx.AsyncClient(base_url=api.base_url, timeout=30.0) as http:
        # 1. The outage: every request is acknowledged and queued; the workers' calls fail.
        codes = await asyncio.gather(
            *(out.submit(http, p) for p in (DOWN, UP) for _ in range(QUEUED_EACH))
        )
        assert codes == [202] * (2 * QUEUED_EACH), out.refused
        await poll_until(
            lambda: (
                {r.vendor for r in fake.requests if r.fault == "server_error"}
                >= {DOWN.value, UP.value}
            ),
            within=20,
            what="failed calls to both vendors",
        )

        # 2. DOWN's vendor recovers slowly: once one of its calls is in flight, kill the master
        # of its queue shard, which still holds waiting requests (more than the slots).
        fake.fail(DOWN.value, "timeout")
        await poll_until(
            lambda: any(r.fault == "timeout" for r in fake.requests),
            within=20,
            what="a slow call in flight",
        )
        running_cluster.kill(layout.master)
        killed, killed_wall = time.monotonic(), time.time()
        # Calls the fake had received and not yet answered: their results are written after
        # the restart (or never, if their leases were lost, and then they would run twice).
        in_flight = [
            r
            for r in fake.requests
            if r.fault == "timeout" and r.received_at > killed_wall - SLOW_CALL
        ]

        # 3. While it is down: the calls in flight get their answers (their results wait for
        # the master), so DOWN's breaker lets the workers try to claim from the dead shard
        # again; DOWN's requests are refused with 503 and Retry-After, UP's are acknowledged,
        # and UP's vendor recovers and its shard drains.
        await poll_until(
            lambda: (
                sum(str(e.data["provider"]) == DOWN.value for e in answered_calls(workers))
                >= len(in_flight)
            ),
            within=10,
            what="the calls in flight at the kill to be answered",
        )
        fake.heal(UP.value)
        down_codes = await asyncio.gather(
            *(out.submit(http, p) for p in (DOWN, UP) for _ in range(DOWN_EACH))
        )
        up_ids = out.of(UP)
        await poll_until(
            lambda: all_completed(http, up_ids),
            within=30,
            interval=0.2,
            what=f"{UP.value}'s requests to complete while {DOWN.value}'s master is down",
        )
        status_while_down = (await http.get(f"/api/v1/status/{out.of(DOWN)[0]}")).status_code
        assert layout.master.process is not None
        assert layout.master.process.poll() is not None, "the master stayed down throughout"
        await asyncio.to_thread(running_cluster.restart, layout.master)
        restarted = time.monotonic()

        # 4. DOWN's vendor is back at full speed: everything acknowledged drains.
        fake.heal()
        acknowledged = list(out.acknowledged)
        await poll_until(
            lambda: all_completed(http, acknowledged),
            within=40,
            interval=0.2,
            what="every acknowledged request to complete",
        )
        drained = time.monotonic() - restarted

    done = completions(processes.events("queue_status_changed"))
    succeeded = count_by_request(processes.events("request_completed"))
    answered = vendor_answers(fake, out.markers)
    refused_down = [r for r in out.refused if r[0] is DOWN]
    by_worker = {
        w.name: sorted({str(e.data["provider"]) for e in w.events("request_completed")})
        for w in workers
    }
    print(
        f"\ncluster drill: acknowledged {len(acknowledged)} ({len(out.of(DOWN))} {DOWN.value}, "
        f"{len(out.of(UP))} {UP.value}); refused while down {len(out.refused)} "
        f"({sorted({r[1] for r in out.refused})}, the slowest in "
        f"{max(out.refusal_seconds, default=0):.1f}s); master {layout.master.port} down "
        f"{restarted - killed:.1f}s with {len(in_flight)} calls in flight at the kill; "
        f"drained in {drained:.1f}s after the restart; "
        f"providers served per worker {by_worker}"
    )
    lost_or_twice = {q: done[q] for q in acknowledged if done[q] != 1}
    assert not lost_or_twice, f"completed other than once: {lost_or_twice}"
    called_twice = {q: succeeded[q] for q in acknowledged if succeeded[q] != 1}
    assert not called_twice, f"provider calls that succeeded other than once: {called_twice}"
    vendor_twice = {q: answered[q] for q in acknowledged if answered[q] != 1}
    assert not vendor_twice, f"answered by the vendor other than once: {vendor_twice}"
    assert in_flight, "a call must be in flight when the master is killed"
    assert sorted(down_codes) == [202] * DOWN_EACH + [503] * DOWN_EACH, out.refused
    assert {(p, code) for p, code, _ in out.refused} == {(DOWN, 503)}
    assert all(retry_after and int(retry_after) >= 1 for *_, retry_after in refused_down)
    assert status_while_down == 503
    assert any(len(served) == 2 for served in by_worker.values()), "a worker claims both shards"
    assert api.running()
    assert all(w.running() for w in workers)


async def test_status_and_cancel_work_for_requests_in_different_shards(
    running_cluster: RedisClusterServer, layout: Layout, processes: ProcessPool
) -> None:
    api = processes.start("api", "serve", worker_enabled=False)  # nothing claims them
    await api.wait_ready()
    out = Submissions()
    async with httpx.AsyncClient(base_url=api.base_url, timeout=30.0) as http:
        for provider in (DOWN, UP):
            assert await out.submit(http, provider) == 202, out.refused
        for queue_id in out.acknowledged:
            status = await http.get(f"/api/v1/status/{queue_id}")
            assert status.status_code == 200, status.text
            assert status.json()["status"] == "queued"
            cancelled = await http.delete(f"/api/v1/status/{queue_id}")
            assert cancelled.status_code == 200, cancelled.text
            assert cancelled.json()["status"] == "cancelled"
            again = await http.get(f"/api/v1/status/{queue_id}")
            assert again.json()["status"] == "cancelled"
        unknown = await http.get("/api/v1/status/00000000-0000-4000-8000-000000000000")
        assert unknown.status_code == 404
