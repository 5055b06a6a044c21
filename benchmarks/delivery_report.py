"""Result-delivery benchmark: the run's outcome and the report written from it."""

from __future__ import annotations

import os
import platform
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiokafka
import redis as redis_sync
from redis.utils import HIREDIS_AVAILABLE

from benchmarks.delivery_harness import make_settings
from benchmarks.delivery_meter import RELAY_LOG, arrival_text
from benchmarks.delivery_scenarios import (
    BATCH_SIZES,
    OUTAGE_SECONDS,
    OUTAGE_SETTINGS,
    Memory,
    Outage,
    Steady,
    Webhooks,
)


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
