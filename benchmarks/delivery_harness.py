"""Result-delivery benchmark: the service's pieces under test (queue, outbox, publisher,
webhook sender and a timed relay), the requests and results it feeds them, and the drain."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from redis.asyncio import Redis

from benchmarks.delivery_meter import RELAY_LOG, Cpu, Meter, Progress, say
from common_core.api_models import ComparisonRequest, ComparisonResult
from common_core.enums import EssayWinner, LLMProviderType
from services.llm_provider_service.delivery.webhook import WebhookSender
from services.llm_provider_service.delivery.webhook_policy import WebhookPolicy
from services.llm_provider_service.events.kafka import KafkaEventPublisher
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.models import ComparisonJob, Lease
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.outbox import RedisResultOutbox
from services.llm_provider_service.redis.queue import RedisRequestQueue
from services.llm_provider_service.relay import ResultRelay
from services.llm_provider_service.result_deliveries import ResultDeliveries
from services.llm_provider_service.settings import Settings

MOCK = LLMProviderType.MOCK
SECRET = "bench-webhook-signing-secret-0123456789"
ESSAY_A = "A careful argument with evidence. " * 40
ESSAY_B = "A lively story without evidence. " * 40
JUSTIFICATION = "Essay A supports each claim with evidence and answers the obvious objection. " * 4
DRAIN_DEADLINE = 120.0  # a drain that takes longer counts its remaining results as lost


class TimedRelay(ResultRelay):
    """The service's relay, with the time spent announcing and delivering added up."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.announce_seconds = 0.0
        self.deliver_seconds = 0.0

    async def announce(self) -> int:
        started = time.perf_counter()
        try:
            return await super().announce()
        finally:
            self.announce_seconds += time.perf_counter() - started

    async def deliver(self) -> int:
        started = time.perf_counter()
        try:
            return await super().deliver()
        finally:
            self.deliver_seconds += time.perf_counter() - started


@dataclass
class Harness:
    """One scenario's queue, outbox, publisher and relay, under its own key prefix and topic."""

    settings: Settings
    redis: Redis
    keys: RedisKeys
    queue: RedisRequestQueue
    outbox: RedisResultOutbox
    publisher: KafkaEventPublisher
    webhooks: WebhookSender | None
    deliveries: ResultDeliveries
    metrics: ServiceMetrics
    relay: TimedRelay

    @classmethod
    def build(cls, redis: Redis, settings: Settings) -> Harness:
        keys = RedisKeys(settings.queue.key_prefix)
        metrics = ServiceMetrics()
        queue = RedisRequestQueue(redis, keys, settings.queue)
        outbox = RedisResultOutbox(
            redis, keys, retention_seconds=settings.queue.result_retention_seconds
        )
        publisher = KafkaEventPublisher(
            settings.kafka,
            on_transition=lambda _name, _old, new: metrics.set_kafka_breaker_state(new),
        )
        webhooks = None
        secret = settings.webhooks.signing_secret
        if settings.webhooks.allowed_hosts and secret is not None:
            webhooks = WebhookSender(
                None,
                WebhookPolicy(settings.webhooks),
                secret.get_secret_value().encode(),
                timeout_seconds=settings.webhooks.timeout_seconds,
            )
        deliveries = ResultDeliveries(
            topic_prefix=settings.kafka.topic_prefix,
            webhook_deadline_seconds=settings.webhooks.delivery_deadline_seconds,
        )
        relay = TimedRelay(
            queue=queue,
            outbox=outbox,
            publisher=publisher,
            webhooks=webhooks,
            deliveries=deliveries,
            metrics=metrics,
            settings=settings,
        )
        return cls(
            settings, redis, keys, queue, outbox, publisher, webhooks, deliveries, metrics, relay
        )

    @property
    def topic(self) -> str:
        return self.deliveries.default_topic

    async def close(self) -> None:
        await self.publisher.close()
        if self.webhooks is not None:
            await self.webhooks.close()

    async def pending(self) -> int:
        return sum((await self.outbox.stats()).pending.values())

    async def unannounced(self) -> int:
        return int(await self.redis.zcard(self.keys.unannounced))

    def published(self, outcome: str) -> int:
        labels = {"event_type": "comparison_result", "outcome": outcome}
        value = self.metrics.registry.get_sample_value(
            "llm_provider_events_published_total", labels
        )
        return int(value or 0)


def make_settings(prefix: str, bootstrap: str, n: int, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "testing",
        "queue_key_prefix": prefix,
        "kafka_topic_prefix": prefix,
        "kafka_enabled": True,
        "kafka_bootstrap_servers": bootstrap,
        "kafka_client_id": "bench_result_delivery",
        "kafka_enable_idempotence": False,  # Tansu refuses the idempotent producer
        "queue_max_size": max(10_000, 2 * n),
        **overrides,
    }
    return Settings(**values)


def make_job(callback_url: str | None = None) -> ComparisonJob:
    request = ComparisonRequest(
        user_prompt="Which essay argues its thesis better? {essay_a} versus {essay_b}",
        essay_a=ESSAY_A,
        essay_b=ESSAY_B,
        metadata={"batch": "bench", "pair": [1, 2]},
        callback_url=callback_url,
    )
    return ComparisonJob(
        request_id=uuid4(),
        correlation_id=uuid4(),
        provider=MOCK,
        request=request,
        requested_at=datetime.now(UTC),
        trace_id="bench-result-delivery",
    )


def make_result(job: ComparisonJob) -> ComparisonResult:
    return ComparisonResult(
        request_id=job.request_id,
        correlation_id=job.correlation_id,
        winner=EssayWinner.ESSAY_A,
        justification=JUSTIFICATION,
        confidence=4,
        provider=job.provider,
        model="mock-rater-1",
        response_time_ms=850,
        token_usage={"prompt_tokens": 900, "completion_tokens": 120, "total_tokens": 1020},
        trace_id=job.trace_id,
        completed_at=datetime.now(UTC),
    )


async def bounded(items: Iterable[Any], work: Callable[[Any], Awaitable[None]], limit: int) -> None:
    gate = asyncio.Semaphore(limit)

    async def one(item: Any) -> None:
        async with gate:
            await work(item)

    await asyncio.gather(*(one(item) for item in items))


async def end_requests(h: Harness, jobs: list[ComparisonJob]) -> float:
    """Enqueue, claim and complete every job, as workers would (32 at a time); seconds."""
    progress = Progress("requests ended in the queue", len(jobs))

    async def enqueue(job: ComparisonJob) -> None:
        await h.queue.enqueue(job, priority=job.request.priority, ttl_seconds=3600)

    async def complete(lease: Lease) -> None:
        if not await h.queue.complete(lease, make_result(lease.job)):
            raise RuntimeError(f"could not complete {lease.queue_id}")
        progress.add()

    await bounded(jobs, enqueue, 32)
    leases: list[Lease] = []
    while len(leases) < len(jobs):
        batch = await h.queue.claim(MOCK, limit=500, owner="bench")
        if not batch:
            raise RuntimeError(f"claimed {len(leases)} of {len(jobs)} requests, then none")
        leases.extend(batch)
    await bounded(leases, complete, 32)
    return progress.finish()


@dataclass
class Drain:
    seconds: float
    passes: list[float]  # seconds of each pass that did something
    announce_seconds: float
    deliver_seconds: float
    left: int  # deliveries or announcements left when the deadline passed (0: drained)
    cpu: Cpu
    unrecorded: int  # sent, but the outcome could not be written (sent again after the lease)

    def pass_ms(self, p: float) -> float:
        if not self.passes:
            return float("nan")
        ordered = sorted(self.passes)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000


async def drain(h: Harness, meter: Meter, label: str, total: int) -> Drain:
    """`run_once` in a loop until nothing is left to announce or deliver."""
    meter.start()
    unrecorded = RELAY_LOG.unrecorded
    passes: list[float] = []
    progress = Progress(label, total)
    started = last_busy = time.perf_counter()
    left = 0
    while True:
        begun = time.perf_counter()
        busy = await h.relay.run_once()
        if busy:
            last_busy = time.perf_counter()
            passes.append(last_busy - begun)
            progress.add(busy)
            continue
        left = await h.pending() + await h.unannounced()
        if not left:
            break
        if time.perf_counter() - started > DRAIN_DEADLINE:
            say(f"  {label}: gave up with {left} left after {DRAIN_DEADLINE:.0f} s")
            break
        await asyncio.sleep(0.05)  # something is due later (a retry): wait for it
    cpu = meter.stop()
    progress.finish()
    unrecorded = RELAY_LOG.unrecorded - unrecorded
    if unrecorded:
        say(f"  {unrecorded} outcomes not recorded ({RELAY_LOG.reasons}); waited out the lease")
    return Drain(
        last_busy - started,
        passes,
        h.relay.announce_seconds,
        h.relay.deliver_seconds,
        left,
        cpu,
        unrecorded,
    )
