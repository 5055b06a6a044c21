"""The R14 model-based test on `RedisRequestQueue`: the in-memory machine's rules and invariants,
run on fakeredis (Lua through lupa) and, with fewer examples, on the session's redis-server.

`QueueMachine` builds an `InMemoryRequestQueue` on a `FakeClock`; `RedisQueueMachine` swaps in a
`RedisRequestQueue` and makes the model's clock and the scripts' `TIME` agree:

- on fakeredis, `TIME` is made to read the model's `FakeClock`, so time stands still between
  advances exactly as for the in-memory queue, and the deadline ties the machine probes (a
  lease read exactly 10 s after its claim, a retry landing exactly on `expires_at`) are
  decided by the scripts' own `<` and `<=`;
- a real redis-server's `TIME` cannot be stopped, so there the queue's time is the wall clock
  plus the `ShiftedTime` offset the rules advance, and the model reads that same clock (one
  host), in whole milliseconds as the scripts do. Each reading is taken in a later millisecond
  than every command before it, so two events are never simultaneous for one side and ordered
  for the other. Real time could only matter if one example ran for about half a second (the
  machine's smallest step); these examples take a few tens of milliseconds.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import fakeredis
import pytest
from fakeredis.commands_mixins import server_mixin
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test
from redis.asyncio import Redis

from tests.factories import FakeClock
from tests.support.redis_queue import QueueBuilder, ShiftedTime
from tests.support.redis_server import RedisServer
from tests.unit.services.llm_provider_service.queue.test_memory_state_machine import (
    CONFIG,
    QueueMachine,
)

MakeClient = Callable[[], Redis]


class FakeredisTime:
    """Stands in for the `time` module inside fakeredis's server commands, so that `TIME`
    (and so every script's `now_ms()`) reads the current machine's `FakeClock`."""

    def __init__(self) -> None:
        self.clock = FakeClock()

    def time(self) -> float:
        return self.clock()


async def _server_time(redis: Redis) -> float:
    seconds, micros = await redis.time()
    return float(seconds + micros / 1e6)


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class WallClockPlusOffset(FakeClock):
    """A real redis-server's queue time (wall clock ms + the test offset), in seconds.

    Each call waits for the wall clock to enter a new millisecond, so a reading is strictly
    later than every Redis command that completed before the call.
    """

    def __init__(self, shifted: ShiftedTime) -> None:
        super().__init__()
        self.shifted = shifted

    def __call__(self) -> float:
        start = _wall_ms()
        while (now := _wall_ms()) <= start:
            time.sleep(0.0002)
        return (now + self.shifted.offset_ms) / 1000

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self.shifted.advance(seconds)


class RedisQueueMachine(QueueMachine):
    """`QueueMachine` over a `RedisRequestQueue` with its own key prefix on `make_client()`.

    With `frozen`, the client is fakeredis whose `TIME` reads this machine's `FakeClock`;
    without, time is the wall clock plus an offset (a real redis-server).
    """

    def __init__(self, make_client: MakeClient, frozen: FakeredisTime | None = None) -> None:
        super().__init__()
        self.redis = make_client()
        builder = QueueBuilder(self.redis, prefix=f"sm{uuid.uuid4().hex[:12]}")
        if frozen is not None:
            frozen.clock = self.clock
            assert self.run(_server_time(self.redis)) == self.clock(), "fakeredis TIME moves"
        else:
            self.clock = WallClockPlusOffset(builder.time)
        # The base machine types its queue as the in-memory one; it only uses the protocol.
        self.queue = builder.build(CONFIG)  # type: ignore[assignment]

    def teardown(self) -> None:
        try:
            self.run(self.redis.aclose())
        finally:
            super().teardown()


def machine_on(make_client: MakeClient, frozen: FakeredisTime | None = None) -> type[QueueMachine]:
    """A `RedisQueueMachine` class that hypothesis can instantiate without arguments."""

    class Machine(RedisQueueMachine):
        def __init__(self) -> None:
            super().__init__(make_client, frozen)

    return Machine


# A failure is shrunk over many examples, which may take minutes: more than the default limit.
@pytest.mark.timeout(600)
def test_redis_queue_keeps_the_invariants_on_fakeredis(monkeypatch: pytest.MonkeyPatch) -> None:
    frozen = FakeredisTime()
    monkeypatch.setattr(server_mixin, "time", frozen)

    def client() -> Redis:
        return fakeredis.FakeAsyncRedis(decode_responses=True)

    run_state_machine_as_test(
        machine_on(client, frozen),
        settings=settings(max_examples=100, stateful_step_count=30, deadline=None, database=None),
    )


@pytest.mark.timeout(600)
def test_redis_queue_keeps_the_invariants_on_redis_server(redis_server: RedisServer) -> None:
    def client() -> Redis:
        return Redis.from_url(redis_server.url, decode_responses=True)

    run_state_machine_as_test(
        machine_on(client),
        settings=settings(max_examples=15, stateful_step_count=25, deadline=None, database=None),
    )
