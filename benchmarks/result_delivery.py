"""Benchmark of result delivery: the durable Redis outbox and the relay to Kafka and webhooks.

Starts a private redis-server (AOF on, `appendfsync everysec` as in docker-compose.yml, or
`--fsync always`) and a private Tansu broker (Kafka-compatible), and drives the service's own
`RedisRequestQueue`, `RedisResultOutbox`, `KafkaEventPublisher`, `WebhookSender` and
`ResultRelay` in this process, along the realistic path: requests end in the queue (enqueue,
claim, complete), the relay announces them into the outbox and delivers the outbox. Every
scenario checks by consuming the topic (and the webhook receiver's records) that every result
arrived; a lost result makes the run exit non-zero. Writes
`documentation/benchmarks-result-delivery.md`.

    pdm run bench-result-delivery                  # defaults: 2,000 results per scenario
    pdm run bench-result-delivery --results 500    # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import aiokafka
import redis as redis_sync
from aiokafka import AIOKafkaConsumer, TopicPartition
from redis.asyncio import Redis
from redis.utils import HIREDIS_AVAILABLE

from common_core.api_models import ComparisonRequest, ComparisonResult
from common_core.enums import EssayWinner, LLMProviderType
from common_core.webhooks import EVENT_ID_HEADER
from devtools.kafka_broker import TansuBroker
from devtools.redis_server import RedisServer
from devtools.webhook_receiver import WebhookReceiver
from services.llm_provider_service.delivery.webhook import WebhookSender
from services.llm_provider_service.delivery.webhook_policy import WebhookPolicy
from services.llm_provider_service.events.kafka import KafkaEventPublisher
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.models import ComparisonJob, Lease
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.outbox import RedisResultOutbox
from services.llm_provider_service.redis.queue import RedisRequestQueue
from services.llm_provider_service.relay import ResultRelay
from services.llm_provider_service.result_deliveries import ResultDeliveries, result_event_id
from services.llm_provider_service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "documentation" / "benchmarks-result-delivery.md"
MOCK = LLMProviderType.MOCK
SECRET = "bench-webhook-signing-secret-0123456789"
ESSAY_A = "A careful argument with evidence. " * 40
ESSAY_B = "A lively story without evidence. " * 40
JUSTIFICATION = "Essay A supports each claim with evidence and answers the obvious objection. " * 4
# Scenario 2: small backoffs and timeouts, so an outage of seconds is a fair test.
OUTAGE_SETTINGS: dict[str, Any] = {
    "outbox_retry_base_seconds": 0.2,
    "outbox_retry_max_seconds": 2.0,
    "kafka_send_timeout_seconds": 1.0,
    "kafka_breaker_reset_timeout_seconds": 1.0,
}
OUTAGE_SECONDS = 3.0  # how long the broker stays down once every result is pending
BATCH_SIZES = (50, 200)  # the default outbox_batch_size and a larger one
DRAIN_DEADLINE = 120.0  # a drain that takes longer counts its remaining results as lost


def say(message: str) -> None:
    print(message, flush=True)


class RelayLog(logging.Handler):
    """The relay's log: its "outcome ... not recorded" warnings are counted (each means a
    delivery that was sent but stays leased, to be sent again when the lease is up), the
    rest printed."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.unrecorded = 0
        self.reasons: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "not recorded" in message:
            self.unrecorded += 1
            reason = message.rsplit(": ", 1)[-1]
            self.reasons[reason] = self.reasons.get(reason, 0) + 1
        else:
            say(f"  relay {record.levelname}: {message}")

    def install(self) -> None:
        relay_logger = logging.getLogger("services.llm_provider_service.relay")
        relay_logger.setLevel(logging.WARNING)
        relay_logger.propagate = False
        relay_logger.addHandler(self)


RELAY_LOG = RelayLog()


class Progress:
    """Prints `label: done/total` at most once a second, and once at the end."""

    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.started = time.perf_counter()
        self._printed = self.started

    def add(self, count: int = 1) -> None:
        self.done += count
        now = time.perf_counter()
        if now - self._printed >= 1.0:
            self._printed = now
            say(f"  {self.label}: {self.done:,}/{self.total:,} ({now - self.started:.1f} s)")

    def finish(self) -> float:
        seconds = time.perf_counter() - self.started
        say(f"  {self.label}: {self.done:,}/{self.total:,} in {seconds:.1f} s")
        return seconds


# ---- servers ----------------------------------------------------------------------------------


def tansu_version(broker: TansuBroker) -> str:
    """`0.6.0` from a binary named like `tansu-v0.6.0-510f3e2`."""
    name = Path(str(broker.binary)).name
    parts = name.split("-")
    return parts[1].removeprefix("v") if len(parts) > 1 else name


def process_cpu_seconds(process: subprocess.Popen[bytes] | None) -> float:
    """User + system CPU seconds of a child process so far, from /proc (0.0 elsewhere)."""
    if process is None:
        return 0.0
    try:
        stat = Path(f"/proc/{process.pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Meter:
    """CPU used by this process (the relay, and everything else the benchmark runs in it),
    redis-server and Tansu, between `start()` and `stop()`: where the time goes."""

    def __init__(self, server: RedisServer, broker: TansuBroker) -> None:
        self.server = server
        self.broker = broker
        self._started = self._now()

    def _now(self) -> tuple[float, float, float, float]:
        return (
            time.perf_counter(),
            time.process_time(),
            process_cpu_seconds(self.server.process),
            process_cpu_seconds(self.broker.process),
        )

    def start(self) -> None:
        self._started = self._now()

    def stop(self) -> Cpu:
        now = self._now()
        wall, relay, redis, tansu = (b - a for a, b in zip(self._started, now, strict=True))
        return Cpu(relay / wall, redis / wall, tansu / wall)


@dataclass(frozen=True)
class Cpu:
    """CPU used over a span of wall time, in cores (1.0: one core busy all the time)."""

    relay: float
    redis: float
    tansu: float

    def text(self) -> str:
        return f"{self.relay:.0%} / {self.redis:.0%} / {self.tansu:.0%}"


# ---- the service's pieces ---------------------------------------------------------------------


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


# ---- measuring --------------------------------------------------------------------------------


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


@dataclass
class Arrival:
    """What a consumer of the topic saw, against what was expected."""

    expected: int
    records: int
    unique: int
    missing: int
    unexpected: int

    @property
    def duplicates(self) -> int:
        return self.records - self.unique - self.unexpected

    @property
    def lost(self) -> bool:
        return self.missing > 0


async def read_topic(bootstrap: str, topic: str, expected: set[UUID]) -> Arrival:
    """Read every partition of `topic` from the start to its end offset (no consumer group),
    and count the request ids in the result events against `expected`."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=10_000,
    )
    await consumer.start()
    seen: list[UUID] = []
    try:
        await consumer.topics()  # fetches metadata
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if tps:
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                positions = [await consumer.position(tp) for tp in tps]
                if all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                    break
                batches = await consumer.getmany(timeout_ms=500, max_records=5000)
                for batch in batches.values():
                    seen.extend(UUID(json.loads(r.value)["data"]["request_id"]) for r in batch)
    finally:
        await consumer.stop()
    unique = set(seen)
    return Arrival(
        expected=len(expected),
        records=len(seen),
        unique=len(unique & expected),
        missing=len(expected - unique),
        unexpected=sum(1 for s in seen if s not in expected),
    )


async def used_memory(redis: Redis) -> int:
    info = await redis.info("memory")
    return int(info["used_memory"])


def arrival_text(a: Arrival) -> str:
    text = f"{a.unique:,}/{a.expected:,} arrived, {a.duplicates} duplicates"
    return text + (f", **{a.missing} LOST**" if a.lost else "")


# ---- scenarios --------------------------------------------------------------------------------


@dataclass
class Steady:
    batch_size: int
    repeat: int
    n: int
    setup_seconds: float
    drain: Drain
    arrival: Arrival
    failed: int

    @property
    def label(self) -> str:
        return f"batch {self.batch_size}, run {self.repeat}"

    @property
    def rate(self) -> float:
        return self.n / self.drain.seconds


async def steady(
    redis: Redis, broker: TansuBroker, meter: Meter, n: int, batch_size: int, repeat: int
) -> Steady:
    say(
        f"scenario 1, run {repeat}: steady delivery to Kafka, {n:,} results, "
        f"outbox_batch_size {batch_size}"
    )
    await redis.flushall()  # every run starts from an empty Redis
    prefix = f"bench1b{batch_size}r{repeat}"
    settings = make_settings(prefix, broker.bootstrap_servers, n, outbox_batch_size=batch_size)
    h = Harness.build(redis, settings)
    try:
        jobs = [make_job() for _ in range(n)]
        setup = await end_requests(h, jobs)
        result = await drain(h, meter, "announced + delivered (count of both)", 2 * n)
        arrival = await read_topic(broker.bootstrap_servers, h.topic, {j.request_id for j in jobs})
    finally:
        await h.close()
    say(
        f"  {n / result.seconds:,.0f} results/s; passes "
        f"p50 {result.pass_ms(50):.1f} ms, p95 {result.pass_ms(95):.1f} ms; CPU relay / "
        f"redis / tansu {result.cpu.text()}; "
        f"{arrival_text(arrival)}"
    )
    return Steady(batch_size, repeat, n, setup, result, arrival, h.published("failed"))


@dataclass
class Outage:
    n: int
    outage_seconds: float  # from stopping the broker to restarting it
    failed_during_outage: int
    outage_cpu: Cpu  # while every result was pending and the broker down
    failed_per_second: float  # failed attempts per second over that span
    failed_after_restart: int
    restart_seconds: float  # the restart call: start the broker, wait for it, create the topic
    delivered_seconds: float  # from the restart call until nothing is pending
    left: int
    arrival: Arrival


async def _wait_all_tried(h: Harness, n: int) -> None:
    """Until every result is announced and pending in the outbox. (Not "until each failed
    once": while the breaker is open a delivery waits for its probe and is not attempted.)"""
    started = time.perf_counter()
    while await h.unannounced() or await h.pending() < n:
        if time.perf_counter() - started > DRAIN_DEADLINE:
            raise RuntimeError("the relay did not announce and try every result in time")
        say(f"  pending {await h.pending():,}, failed attempts {h.published('failed'):,}")
        await asyncio.sleep(1.0)


async def _wait_delivered(h: Harness, since: float) -> int:
    """Until nothing is pending (or the drain deadline passed); what is left."""
    left = await h.pending()
    printed = time.perf_counter()
    while left and time.perf_counter() - since < DRAIN_DEADLINE:
        await asyncio.sleep(0.05)
        left = await h.pending()
        if time.perf_counter() - printed >= 1.0:
            printed = time.perf_counter()
            say(f"  pending {left:,} ({printed - since:.1f} s after the restart)")
    return left


async def outage(redis: Redis, broker: TansuBroker, meter: Meter, n: int) -> Outage:
    say(f"scenario 2: backlog after a Kafka outage, {n:,} results")
    settings = make_settings("bench2", broker.bootstrap_servers, n, **OUTAGE_SETTINGS)
    h = Harness.build(redis, settings)
    stop = asyncio.Event()
    broker.stop()
    went_down = time.perf_counter()
    say("  broker stopped (SIGKILL); relay running")
    runner = asyncio.create_task(h.relay.run(stop))
    try:
        jobs = [make_job() for _ in range(n)]
        await end_requests(h, jobs)
        await _wait_all_tried(h, n)
        meter.start()
        failed_then = h.published("failed")
        await asyncio.sleep(OUTAGE_SECONDS)
        cpu = meter.stop()
        failed_before = h.published("failed")
        say(
            f"  outage: {await h.pending():,} pending, {failed_before:,} failed attempts "
            f"({(failed_before - failed_then) / OUTAGE_SECONDS:,.0f}/s lately); restarting"
        )
        restarted = time.perf_counter()
        await asyncio.to_thread(broker.restart, topics=[h.topic])
        ready = time.perf_counter()
        say(f"  broker up again after {ready - restarted:.1f} s")
        left = await _wait_delivered(h, restarted)
        done = time.perf_counter()
        say(f"  backlog delivered {done - restarted:.1f} s after the restart")
    finally:
        stop.set()
        await runner
        await h.close()
    arrival = await read_topic(broker.bootstrap_servers, h.topic, {j.request_id for j in jobs})
    say(f"  {arrival_text(arrival)}")
    return Outage(
        n=n,
        outage_seconds=restarted - went_down,
        failed_during_outage=failed_before,
        outage_cpu=cpu,
        failed_per_second=(failed_before - failed_then) / OUTAGE_SECONDS,
        failed_after_restart=h.published("failed") - failed_before,
        restart_seconds=ready - restarted,
        delivered_seconds=done - restarted,
        left=left + await h.unannounced(),
        arrival=arrival,
    )


@dataclass
class Webhooks:
    n: int
    drain: Drain
    received: int
    unique: int
    missing: int
    badly_signed: int
    kafka: Arrival

    @property
    def duplicates(self) -> int:
        return self.received - self.unique

    @property
    def lost(self) -> bool:
        return self.missing > 0 or self.badly_signed > 0 or self.kafka.lost


async def webhooks(redis: Redis, broker: TansuBroker, meter: Meter, n: int) -> Webhooks:
    say(f"scenario 3: webhooks (and their Kafka events), {n:,} results with a callback_url")
    async with WebhookReceiver() as receiver:
        settings = make_settings(
            "bench3",
            broker.bootstrap_servers,
            n,
            webhook_allowed_hosts=("127.0.0.1",),
            webhook_allow_private_addresses=True,
            webhook_allow_http=True,
            webhook_signing_secret=SECRET,
        )
        h = Harness.build(redis, settings)
        try:
            jobs = [make_job(callback_url=receiver.url("/hook")) for _ in range(n)]
            await end_requests(h, jobs)
            result = await drain(h, meter, "announced + delivered (count of both)", 3 * n)
        finally:
            await h.close()
        verified = receiver.verified_bodies(SECRET.encode())
        ids = [r.header(EVENT_ID_HEADER) for r in receiver.successful]
    expected = {str(result_event_id(j.request_id)) for j in jobs}
    arrived = {i for i in ids if i in expected}
    badly_signed = len(receiver.requests) - len(verified)
    kafka = await read_topic(broker.bootstrap_servers, h.topic, {j.request_id for j in jobs})
    outcome = Webhooks(
        n, result, len(ids), len(arrived), len(expected - arrived), badly_signed, kafka
    )
    say(
        f"  {n / result.seconds:,.0f} webhooks/s ({2 * n / result.seconds:,.0f} deliveries/s); "
        f"webhooks {outcome.unique:,}/{n:,} arrived, {outcome.duplicates} duplicates; "
        f"Kafka {arrival_text(kafka)}"
        + (f"; **{badly_signed} BADLY SIGNED**" if badly_signed else "")
    )
    return outcome


@dataclass
class Memory:
    n: int
    payload_bytes: float
    pending: float  # bytes per pending Kafka delivery
    delivered: float  # bytes per delivered delivery kept for its retention
    ended_request: float  # bytes per ended request kept in the queue for its retention


async def memory(redis: Redis, broker: TansuBroker, n: int) -> Memory:
    say(f"memory: {n:,} pending deliveries in the outbox")
    await redis.flushall()
    h = Harness.build(redis, make_settings("bench4", broker.bootstrap_servers, n))
    try:
        base = await used_memory(redis)
        jobs = [make_job() for _ in range(n)]
        outcomes = [h.deliveries.for_outcome(j, result=make_result(j))[0] for j in jobs]

        async def add(delivery: Any) -> None:
            if not await h.outbox.add(delivery):
                raise RuntimeError(f"delivery {delivery.delivery_id} already there")

        await bounded(outcomes, add, 32)
        pending = await used_memory(redis)
        if await h.pending() != n:
            raise RuntimeError(f"{await h.pending()} pending, not {n}")

        async def deliver(delivery: Any) -> None:
            await h.outbox.delivered(delivery.delivery_id)

        await bounded(outcomes, deliver, 32)
        delivered = await used_memory(redis)
        await end_requests(h, [make_job() for _ in range(n)])
        ended = await used_memory(redis)
    finally:
        await h.close()
    payload = sum(len(d.payload) for d in outcomes) / n
    result = Memory(
        n, payload, (pending - base) / n, (delivered - base) / n, (ended - delivered) / n
    )
    say(
        f"  {result.pending:,.0f} bytes per pending delivery (payload {payload:,.0f} bytes); "
        f"{result.delivered:,.0f} per delivered one kept; {result.ended_request:,.0f} per "
        f"ended request in the queue"
    )
    await redis.flushall()
    return result


# ---- the report -------------------------------------------------------------------------------


@dataclass
class Run:
    n: int
    repeats: int
    fsync: str
    redis_version: str
    tansu_version: str
    load: tuple[float, float, float]
    steady: list[Steady] = field(default_factory=list)
    outage: Outage | None = None
    webhooks: Webhooks | None = None
    memory: Memory | None = None
    seconds: float = 0.0

    def median_rate(self, batch_size: int) -> float:
        rates = [s.rate for s in self.steady if s.batch_size == batch_size]
        return statistics.median(rates) if rates else float("nan")

    @property
    def lost(self) -> list[str]:
        problems = [f"scenario 1 ({s.label})" for s in self.steady if s.arrival.lost]
        problems += [f"scenario 1 ({s.label}) not drained" for s in self.steady if s.drain.left]
        if self.outage is not None and (self.outage.arrival.lost or self.outage.left):
            problems.append("scenario 2")
        if self.webhooks is not None and (self.webhooks.lost or self.webhooks.drain.left):
            problems.append("scenario 3")
        return problems


def _steady_table(rows: list[Steady]) -> list[str]:
    out = [
        "| outbox_batch_size | run | results/s | total s | passes | pass p50 ms | pass p95 ms "
        "| pass max ms | announce share | CPU relay / redis / tansu | arrived | duplicates "
        "| failed publishes | outcomes not recorded |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in rows:
        d = s.drain
        share = d.announce_seconds / (d.announce_seconds + d.deliver_seconds or 1)
        out.append(
            f"| {s.batch_size} | {s.repeat} | {s.rate:,.0f} | {d.seconds:.2f} | {len(d.passes)} "
            f"| {d.pass_ms(50):.1f} | {d.pass_ms(95):.1f} | {max(d.passes) * 1000:.1f} "
            f"| {share:.0%} | {d.cpu.text()} | {s.arrival.unique:,}/{s.n:,}"
            f"{' **LOST**' if s.arrival.lost else ''} | {s.arrival.duplicates} | {s.failed} "
            f"| {d.unrecorded} |"
        )
    return out


def _outage_table(o: Outage) -> list[str]:
    return [
        "| results | outage s | failed attempts during outage | CPU relay / redis during "
        "outage | broker restart s | restart → all delivered s | failed attempts after restart "
        "| arrived | duplicates |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {o.n:,} | {o.outage_seconds:.1f} | {o.failed_during_outage:,} "
        f"| {o.outage_cpu.relay:.0%} / {o.outage_cpu.redis:.0%} "
        f"| {o.restart_seconds:.1f} | {o.delivered_seconds:.1f} | {o.failed_after_restart:,} "
        f"| {o.arrival.unique:,}/{o.n:,}{' **LOST**' if o.arrival.lost else ''} "
        f"| {o.arrival.duplicates} |",
    ]


def _webhook_table(w: Webhooks) -> list[str]:
    d = w.drain
    return [
        "| results with callback_url | webhooks/s | deliveries/s (webhook + Kafka) | total s "
        "| pass p50 ms | pass p95 ms | CPU relay / redis / tansu | webhooks arrived "
        "| duplicates | Kafka arrived | outcomes not recorded |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {w.n:,} | {w.n / d.seconds:,.0f} | {2 * w.n / d.seconds:,.0f} | {d.seconds:.2f} "
        f"| {d.pass_ms(50):.1f} | {d.pass_ms(95):.1f} | {d.cpu.text()} "
        f"| {w.unique:,}/{w.n:,}{' **LOST**' if w.missing else ''} | {w.duplicates} "
        f"| {arrival_text(w.kafka)} | {d.unrecorded} |",
    ]


def _memory_table(m: Memory) -> list[str]:
    return [
        "| what (measured with N of them) | bytes each (Redis `used_memory`) |",
        "|---|---|",
        f"| pending Kafka delivery in the outbox (event payload {m.payload_bytes:,.0f} bytes) "
        f"| {m.pending:,.0f} |",
        f"| delivered delivery, kept (without payload) for the retention | {m.delivered:,.0f} |",
        f"| ended request in the queue, kept for the retention (job with two ~1.3 kB essays) "
        f"| {m.ended_request:,.0f} |",
        "",
        f"So 100,000 queued results a day, kept for the default 24 h "
        "(`queue_result_retention_seconds`), hold about "
        f"{(m.delivered + m.ended_request) * 100_000 / 1e6:,.0f} MB of Redis (ended queue "
        "record + delivered delivery), and a backlog of 100,000 undelivered results about "
        f"{m.pending * 100_000 / 1e6:,.0f} MB more.",
    ]


def _interpretation(run: Run) -> list[str]:
    lines: list[str] = []
    if run.steady:
        small, large = BATCH_SIZES
        shares = [s.drain.announce_seconds / (s.drain.seconds or 1) for s in run.steady]
        relay_cpu = statistics.median(s.drain.cpu.relay for s in run.steady)
        redis_cpu = statistics.median(s.drain.cpu.redis for s in run.steady)
        change = run.median_rate(large) / run.median_rate(small) - 1
        rates = [s.rate for s in run.steady]
        spread = (max(rates) - min(rates)) / statistics.median(rates)
        noise = "within" if abs(change) <= spread else "beyond"
        lines.append(
            f"Steady delivery (median {run.median_rate(small):,.0f} results/s with batches of "
            f"{small}, {run.median_rate(large):,.0f} with {large}) is bound by the relay's one "
            f"Python process, busy {relay_cpu:.0%} of a core against {redis_cpu:.0%} for "
            "redis-server: the cost is per result, not per pass (batches of "
            f"{large} changed throughput by {change:+.0%}, {noise} the spread between runs), "
            f"and announcing takes about {statistics.median(shares):.0%} of it because "
            "it reads each ended request's whole record (the job with both essays, parsed by "
            "redis-py in pure Python) and rebuilds the event (prompt hash included) before its "
            "`outbox.add` per channel and its `mark_announced`; both steps run "
            "`outbox_send_concurrency` at a time."
        )
    stalled = [s for s in run.steady if s.drain.unrecorded]
    if stalled:
        reasons = ", ".join(f"{r!r} x{c}" for r, c in RELAY_LOG.reasons.items())
        lease = make_settings("x", "x", 1).outbox.lease_seconds
        why = (
            ": redis-py's asyncio pool allows 100 connections unless told otherwise and "
            "fails at once beyond that, and a pass finishes up to a whole batch of deliveries "
            "at the same moment, so with batches over 100"
            if any("Too many connections" in r for r in RELAY_LOG.reasons)
            else ", so"
        )
        lines.append(
            f"In {len(stalled)} of {len(run.steady)} runs the relay could not record "
            f"{sum(s.drain.unrecorded for s in stalled)} outcomes ({reasons}){why} those "
            f"deliveries, already in Kafka, waited out their {lease:g} s lease and were sent "
            "again (the duplicates and the slow runs above)."
        )
    if run.outage is not None:
        o = run.outage
        lines.append(
            f"After the outage the {o.n:,}-result backlog was delivered "
            f"{o.delivered_seconds:.1f} s after the restart call, which is about the breaker's "
            "reset timeout plus the deliveries' jittered backoff (at most "
            f"{OUTAGE_SETTINGS['outbox_retry_max_seconds']:g} s here) plus the drain at the "
            f"steady rate; during the outage the relay made {o.failed_per_second:,.0f} failed "
            f"attempts/s ({o.outage_cpu.relay:.0%} of a core): while the breaker is open a "
            "delivery waits for the breaker's probe instead of failing at once."
        )
    if run.webhooks is not None:
        w = run.webhooks
        lines.append(
            f"Webhooks ({w.n / w.drain.seconds:,.0f}/s, each result also going to Kafka) are "
            "slower because the receiver runs in the relay's process and each POST costs "
            "signing and an httpx round trip; a remote receiver adds its network round trip "
            "to every pass (a batch is sent concurrently)."
        )
    return lines


def report(run: Run) -> str:
    settings = make_settings("llmq", "127.0.0.1:9092", run.n)
    lines = [
        "# Benchmarks: result delivery (outbox and relay)",
        "",
        "Written by `pdm run bench-result-delivery` (benchmarks/result_delivery.py); do not "
        "edit by hand.",
        "",
        f"- when: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; whole run {run.seconds:.0f} s",
        f"- machine: {platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs; load "
        f"average at the start {' / '.join(f'{x:.2f}' for x in run.load)} (1/5/15 min: other "
        "work on the machine shows up as noise between runs)",
        f"- versions: Python {platform.python_version()}, redis-server {run.redis_version}, "
        f"Tansu {run.tansu_version} (Kafka-compatible broker, in-memory storage), aiokafka "
        f"{aiokafka.__version__}, redis-py {redis_sync.__version__} "
        f"({'hiredis' if HIREDIS_AVAILABLE else 'pure-Python'} reply parser)",
        f"- Redis: a private redis-server, AOF on, `appendfsync {run.fsync}`, "
        "`maxmemory-policy noeviction` (redis-py client with `decode_responses` as in the "
        "service, 10 s socket timeout); Tansu: a private broker on loopback",
        f"- N = {run.n:,} results (`--results`); the service's `ResultRelay`, "
        "`RedisRequestQueue`, `RedisResultOutbox`, `KafkaEventPublisher` (acks=all, "
        "idempotence off: Tansu refuses it) and `WebhookSender` in one process, driven by "
        "`run_once()` in a loop (scenarios 1 and 3) or `run()` (scenario 2)",
        "- the path measured: requests ended in the queue (enqueue, claim, complete: not "
        "timed) → announce (`take_unannounced`, `outbox.add`, `mark_announced`) → claim → "
        "publish / POST → `delivered`",
        f"- settings: outbox_batch_size {settings.outbox.batch_size} (and 200), "
        f"outbox_lease_seconds {settings.outbox.lease_seconds:g}, "
        f"outbox_poll_interval_seconds {settings.outbox.poll_interval_seconds:g}, "
        f"kafka_send_timeout_seconds {settings.kafka.send_timeout_seconds:g}, breaker "
        f"{settings.kafka.breaker_failure_threshold} failures / "
        f"{settings.kafka.breaker_reset_timeout_seconds:g} s; scenario 2: "
        + ", ".join(f"{k} {v:g}" for k, v in OUTAGE_SETTINGS.items())
        + f"; webhooks: timeout {settings.webhooks.timeout_seconds:g} s, the sender's own "
        "client (64 connections), receiver on 127.0.0.1 in the same process",
        "",
        f"## 1. Steady delivery to Kafka ({run.n:,} results, {run.repeats} runs per batch size)",
        "",
        *_steady_table(run.steady),
        "",
        "Median: "
        + ", ".join(
            f"**{run.median_rate(b):,.0f} results/s** with batches of {b}" for b in BATCH_SIZES
        )
        + ". A pass is one `run_once()`: announce up to a batch of ended requests, then claim "
        "and send up to a batch of deliveries. Announce share: the part of the drain spent "
        "announcing. CPU: cores busy over the drain (100% = one core), this process (relay, "
        "Kafka client) / redis-server / Tansu.",
        "",
    ]
    if run.outage is not None:
        lines += [
            f"## 2. Backlog after a Kafka outage ({run.outage.n:,} results)",
            "",
            "The broker is stopped (SIGKILL), the results end while the relay runs (each is "
            "tried and backs off, or waits for the open breaker's probe), the outage goes on "
            f"{OUTAGE_SECONDS:g} s more, then the broker is restarted and the topic re-created. "
            "Failed attempts are `llm_provider_events_published_total{event_type="
            '"comparison_result",outcome="failed"}` (refusals by an open breaker are not '
            "attempts and are not counted).",
            "",
            *_outage_table(run.outage),
            "",
        ]
    if run.webhooks is not None:
        lines += [
            f"## 3. Webhooks ({run.webhooks.n:,} results with a callback_url, N/4)",
            "",
            "Each result is owed twice: to the Kafka topic and to the webhook receiver "
            "(signed, verified by the receiver).",
            "",
            *_webhook_table(run.webhooks),
            "",
        ]
    if run.memory is not None:
        lines += [
            f"## Memory ({run.memory.n:,} of each)",
            "",
            *_memory_table(run.memory),
            "",
        ]
    lines += ["## Interpretation", "", " ".join(_interpretation(run)), ""]
    if run.lost:
        lines += [f"**RESULTS LOST OR NOT DELIVERED: {', '.join(run.lost)}**", ""]
    return "\n".join(lines)


async def main(n: int, repeats: int, fsync: str) -> int:
    started = time.perf_counter()
    logging.basicConfig(level=logging.ERROR, format="  log %(levelname)s %(name)s: %(message)s")
    # aiokafka logs every refused connection during the intended outage.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    RELAY_LOG.install()
    with tempfile.TemporaryDirectory(prefix="bench-result-delivery-") as tmp:
        server = RedisServer(Path(tmp) / "redis", fsync=fsync)
        broker = TansuBroker(Path(tmp) / "tansu")
        run = Run(n, repeats, fsync, server.version(), tansu_version(broker), os.getloadavg())
        say(f"redis-server {run.redis_version} (appendfsync {fsync}), Tansu {run.tansu_version}")
        server.start()
        broker.start()
        meter = Meter(server, broker)
        redis = Redis.from_url(
            server.url, decode_responses=True, socket_connect_timeout=5, socket_timeout=10
        )
        try:
            for repeat in range(1, repeats + 1):
                for batch_size in BATCH_SIZES:
                    outcome = await steady(redis, broker, meter, n, batch_size, repeat)
                    run.steady.append(outcome)
            run.outage = await outage(redis, broker, meter, n)
            run.webhooks = await webhooks(redis, broker, meter, max(1, n // 4))
            run.memory = await memory(redis, broker, n)
        finally:
            await redis.aclose()
            broker.stop()
            server.stop()
    run.seconds = time.perf_counter() - started
    REPORT.write_text(report(run))
    say(f"report written to {REPORT} ({run.seconds:.0f} s in all)")
    if run.lost:
        say(f"RESULTS LOST OR NOT DELIVERED: {', '.join(run.lost)}")
        return 1
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=2000, help="N (default 2,000)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of scenario 1 per batch size (default 3)"
    )
    parser.add_argument(
        "--fsync",
        choices=("everysec", "always"),
        default="everysec",
        help="redis-server appendfsync (default everysec, as in docker-compose.yml)",
    )
    options = parser.parse_args()
    if options.results < 1 or options.repeats < 1:
        parser.error("--results and --repeats must be at least 1")
    sys.exit(asyncio.run(main(options.results, options.repeats, options.fsync)))
