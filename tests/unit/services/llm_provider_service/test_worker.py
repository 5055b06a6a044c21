"""The queue worker: drains when the breaker allows, retries, fails, releases, drops stale work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from uuid import UUID

import pytest

from common_core.enums import LLMProviderType, QueueStatus
from services.llm_provider_service.breaker import CircuitBreakers
from services.llm_provider_service.errors import (
    ProviderAuthError,
    ProviderUnavailableError,
    QueueUnavailableError,
)
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.models import ComparisonJob, QueueRecord
from services.llm_provider_service.outbox.unsaved import UnsavedDeliveries
from services.llm_provider_service.queue.memory import InMemoryRequestQueue
from services.llm_provider_service.relay import ResultRelay
from services.llm_provider_service.settings import Settings
from services.llm_provider_service.tracing import default_tracer
from services.llm_provider_service.worker import QueueWorker
from tests.factories import make_job
from tests.fakes import RecordingPublisher, ScriptedProvider
from tests.support.request_path import build_request_path

MOCK = LLMProviderType.MOCK


@dataclass
class Rig:
    worker: QueueWorker
    queue: InMemoryRequestQueue
    provider: ScriptedProvider
    breakers: CircuitBreakers
    publisher: RecordingPublisher
    metrics: ServiceMetrics
    settings: Settings
    relay: ResultRelay

    async def flush_results(self) -> None:
        """Let the relay announce every ended request and deliver what it owes."""
        while await self.relay.run_once():
            pass


def build(settings: Settings, queue: InMemoryRequestQueue | None = None) -> Rig:
    path = build_request_path(settings, queue=queue)
    relay = ResultRelay(
        queue=path.queue,
        outbox=path.outbox,
        publisher=path.publisher,
        webhooks=None,
        deliveries=path.deliveries,
        metrics=path.metrics,
        settings=settings,
        unsaved=UnsavedDeliveries(max_deliveries=10_000),
        tracer=default_tracer(),
    )
    worker = path.worker(owner="test-worker")
    return Rig(
        worker,
        path.queue,
        path.provider,
        path.breakers,
        path.publisher,
        path.metrics,
        settings,
        relay,
    )


@pytest.fixture
def rig(make_settings) -> Rig:
    return build(make_settings(queue_max_attempts=3))


@pytest.fixture
async def running(rig: Rig) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(rig.worker.run(stop))
    yield stop
    stop.set()
    await asyncio.wait_for(task, timeout=5)


def outage() -> ProviderUnavailableError:
    return ProviderUnavailableError(MOCK, "upstream 503", reason="server_error", status=503)


async def wait_for_status(
    queue: InMemoryRequestQueue, queue_id: UUID, *statuses: QueueStatus, within: float = 5.0
) -> QueueRecord:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        record = await queue.get(queue_id)
        if record is not None and record.status in statuses:
            return record
        await asyncio.sleep(0.01)
    record = await queue.get(queue_id)
    raise AssertionError(f"{queue_id} still {record.status if record else None}")


async def record_of(queue: InMemoryRequestQueue, queue_id: UUID) -> QueueRecord:
    record = await queue.get(queue_id)
    assert record is not None
    return record


async def enqueue(rig: Rig, **kwargs) -> ComparisonJob:
    job = make_job(**kwargs)
    await rig.queue.enqueue(job, priority=5, ttl_seconds=60)
    return job


async def test_drains_queued_requests_and_publishes_results(rig, running):
    jobs = [await enqueue(rig) for _ in range(10)]
    for job in jobs:
        record = await wait_for_status(rig.queue, job.request_id, QueueStatus.COMPLETED)
        assert record.result is not None
        assert record.result.request_id == job.request_id
    assert len(rig.provider.calls) == 10
    await rig.flush_results()
    results = rig.publisher.of_type("comparison_result")
    assert sorted(str(e.data.request_id) for e in results) == sorted(
        str(j.request_id) for j in jobs
    )
    assert all(e.data.error_detail is None for e in results)


async def test_retryable_failures_retry_then_complete(rig, running):
    rig.provider.script = [outage(), outage()]
    job = await enqueue(rig)
    record = await wait_for_status(rig.queue, job.request_id, QueueStatus.COMPLETED)
    assert record.attempts == 3
    retries = rig.metrics.registry.get_sample_value(
        "llm_provider_queue_retries_total", {"provider": "mock"}
    )
    assert retries == 2.0


async def test_spent_attempts_end_failed_with_last_error(make_settings):
    rig = build(make_settings(queue_max_attempts=2, circuit_breaker_failure_threshold=50))
    rig.provider.script = [outage(), outage(), outage()]
    stop = asyncio.Event()
    task = asyncio.create_task(rig.worker.run(stop))
    job = await enqueue(rig)
    record = await wait_for_status(rig.queue, job.request_id, QueueStatus.FAILED)
    stop.set()
    await task
    assert record.error is not None
    assert record.error.code == "PROVIDER_UNAVAILABLE"
    await rig.flush_results()
    [event] = rig.publisher.of_type("comparison_result")
    assert event.data.error_detail.code == "PROVIDER_UNAVAILABLE"
    assert event.data.winner is None


async def test_non_retryable_error_fails_at_once(rig, running):
    rig.provider.script = [ProviderAuthError(MOCK, "bad key", status=401)]
    job = await enqueue(rig)
    record = await wait_for_status(rig.queue, job.request_id, QueueStatus.FAILED)
    assert record.attempts == 1
    assert record.error is not None
    assert record.error.code == "PROVIDER_AUTH_ERROR"


async def test_open_breaker_claims_nothing_and_spends_no_attempts(rig):
    breaker = rig.breakers[MOCK]
    rig.provider.script = [outage()] * 3
    for _ in range(3):
        with pytest.raises(ProviderUnavailableError):
            await breaker.call(rig.provider.compare, None, None)
    calls = len(rig.provider.calls)
    job = await enqueue(rig)
    await rig.worker.run_once()
    record = await record_of(rig.queue, job.request_id)
    assert record.status is QueueStatus.QUEUED
    assert record.attempts == 0
    assert len(rig.provider.calls) == calls


async def test_backlog_drains_in_priority_then_fifo_order_after_recovery(make_settings):
    rig = build(make_settings(worker_concurrency_per_provider=1))
    low = [make_job() for _ in range(3)]
    high = [make_job() for _ in range(3)]
    for job in low:
        await rig.queue.enqueue(job, priority=1, ttl_seconds=60)
    for job in high:
        await rig.queue.enqueue(job, priority=9, ttl_seconds=60)
    stop = asyncio.Event()
    task = asyncio.create_task(rig.worker.run(stop))
    for job in low:
        await wait_for_status(rig.queue, job.request_id, QueueStatus.COMPLETED)
    stop.set()
    await task
    served = [e.data.request_id for e in rig.publisher.of_type("request_started")]
    assert served == [j.request_id for j in high + low]


class LeaseStealingQueue(InMemoryRequestQueue):
    """Reports every heartbeat as lost, as if another worker had reclaimed the request."""

    async def heartbeat(self, lease) -> bool:
        return False


async def test_lost_lease_cancels_the_call_and_drops_its_result(make_settings):
    settings = make_settings(queue_lease_seconds=0.15)
    rig = build(settings, LeaseStealingQueue(settings.queue))
    rig.provider.gate = asyncio.Event()  # the call would run forever
    job = await enqueue(rig)
    await rig.worker.run_once()
    assert rig.worker.in_flight == 1
    for _ in range(100):  # the first heartbeat comes after lease/3 = 0.05 s
        if rig.worker.in_flight == 0:
            break
        await asyncio.sleep(0.01)
    assert rig.worker.in_flight == 0
    rig.provider.gate.set()
    await asyncio.sleep(0.05)
    record = await record_of(rig.queue, job.request_id)
    assert record.status is QueueStatus.PROCESSING  # left for the lease to expire and reclaim
    assert record.result is None
    await rig.flush_results()
    assert rig.publisher.of_type("comparison_result") == []


async def test_shutdown_releases_unfinished_work_unspent(make_settings):
    rig = build(make_settings(worker_shutdown_grace_seconds=0.1))
    rig.provider.gate = asyncio.Event()  # calls never finish
    job = await enqueue(rig)
    stop = asyncio.Event()
    task = asyncio.create_task(rig.worker.run(stop))
    await wait_for_status(rig.queue, job.request_id, QueueStatus.PROCESSING)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    record = await record_of(rig.queue, job.request_id)
    assert record.status is QueueStatus.QUEUED
    assert record.attempts == 0


async def test_shutdown_lets_in_flight_calls_finish_within_grace(make_settings):
    rig = build(make_settings(worker_shutdown_grace_seconds=2.0))
    rig.provider.gate = asyncio.Event()
    job = await enqueue(rig)
    stop = asyncio.Event()
    task = asyncio.create_task(rig.worker.run(stop))
    await wait_for_status(rig.queue, job.request_id, QueueStatus.PROCESSING)
    stop.set()
    await asyncio.sleep(0.1)
    rig.provider.gate.set()
    await asyncio.wait_for(task, timeout=5)
    record = await record_of(rig.queue, job.request_id)
    assert record.status is QueueStatus.COMPLETED


async def test_expired_requests_publish_expiry_and_error_result(make_settings):
    rig = build(make_settings())
    job = make_job()
    await rig.queue.enqueue(job, priority=5, ttl_seconds=1)
    breaker = rig.breakers[MOCK]
    breaker._breaker.open()  # keep the worker from claiming it
    breaker._opened_at = 10**12
    stop = asyncio.Event()
    task = asyncio.create_task(rig.worker.run(stop))
    record = await wait_for_status(rig.queue, job.request_id, QueueStatus.EXPIRED, within=5)
    await asyncio.sleep(0.2)
    stop.set()
    await task
    assert record.error is not None
    assert record.error.code == "REQUEST_EXPIRED"
    assert [e.data.queue_id for e in rig.publisher.of_type("request_expired")] == [job.request_id]
    await rig.flush_results()
    [result] = rig.publisher.of_type("comparison_result")
    assert result.data.error_detail.code == "REQUEST_EXPIRED"
    assert rig.provider.calls == []


def test_backoff_grows_with_jitter_and_honours_retry_after(rig):
    settings = rig.settings
    delays = [rig.worker.backoff(attempt, None) for attempt in (1, 2, 3, 10)]
    assert all(
        settings.queue.retry_base_seconds <= d <= settings.queue.retry_max_seconds for d in delays
    )
    assert rig.worker.backoff(1, retry_after=7.5) == 7.5


class ShardDownQueue(InMemoryRequestQueue):
    """A queue whose anthropic shard is unreachable, as a Redis Cluster master may be."""

    async def claim(self, provider: LLMProviderType, *, limit: int, owner: str):
        if provider is LLMProviderType.ANTHROPIC:
            raise QueueUnavailableError("the request queue (Redis) is unreachable")
        return await super().claim(provider, limit=limit, owner=owner)


async def test_a_shard_that_cannot_be_reached_stops_no_other_providers_claims(make_settings):
    settings = make_settings()
    rig = build(settings, ShardDownQueue(settings.queue))
    job = await enqueue(rig)  # the mock's, claimed after anthropic's in every pass

    with pytest.raises(QueueUnavailableError):  # the pass still says the queue failed
        await rig.worker.run_once()

    await wait_for_status(rig.queue, job.request_id, QueueStatus.COMPLETED)
