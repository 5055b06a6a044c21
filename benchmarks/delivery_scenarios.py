"""Result-delivery benchmark: the scenarios (steady delivery, the backlog after a Kafka
outage, webhooks) and the memory measurement."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from benchmarks.delivery_harness import (
    DRAIN_DEADLINE,
    SECRET,
    Drain,
    Harness,
    bounded,
    drain,
    end_requests,
    make_job,
    make_result,
    make_settings,
)
from benchmarks.delivery_meter import (
    Arrival,
    Cpu,
    Meter,
    arrival_text,
    read_topic,
    say,
    used_memory,
)
from common_core.webhooks import EVENT_ID_HEADER
from devtools.kafka_broker import TansuBroker
from devtools.webhook_receiver import WebhookReceiver
from services.llm_provider_service.result_deliveries import result_event_id

# Scenario 2: small backoffs and timeouts, so an outage of seconds is a fair test.
OUTAGE_SETTINGS: dict[str, Any] = {
    "outbox_retry_base_seconds": 0.2,
    "outbox_retry_max_seconds": 2.0,
    "kafka_send_timeout_seconds": 1.0,
    "kafka_breaker_reset_timeout_seconds": 1.0,
}
OUTAGE_SECONDS = 3.0  # how long the broker stays down once every result is pending
BATCH_SIZES = (50, 200)  # the default outbox_batch_size and a larger one


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
