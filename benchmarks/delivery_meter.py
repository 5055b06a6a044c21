"""Result-delivery benchmark: what it measures with (progress lines, the relay's log,
CPU of this process, redis-server and Tansu) and what a consumer of the topic saw."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from aiokafka import AIOKafkaConsumer, TopicPartition
from redis.asyncio import Redis

from devtools.kafka_broker import TansuBroker
from devtools.redis_server import RedisServer


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
