"""How fast each provider's queue drains, observed, for honest wait estimates.

The `DrainRate` port (`protocols/queue.py`) has two adapters: `InMemoryDrainRate`, with the
in-memory queue (one process is the whole service), and `RedisDrainRate`, with the Redis
queue, where every worker records its completions in Redis and every replica, API-only ones
included, estimates from the same numbers.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from uuid import UUID

from redis.asyncio import Redis

from common_core.enums import LLMProviderType
from services.llm_provider_service.errors import QueueUnavailableError
from services.llm_provider_service.queue.keys import QueueKeys
from services.llm_provider_service.redis_errors import translated_redis_errors

_STORE = "the drain rate"

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 300.0
# At most this many completions are kept per provider in Redis (the newest): past it the
# window is shorter than WINDOW_SECONDS, and the rate is still right.
MAX_KEPT = 10_000


def rate_of(completions: int, span_seconds: float) -> float | None:
    """(completions - 1) / the time they span; None with fewer than two."""
    if completions < 2:
        return None
    return (completions - 1) / max(span_seconds, 1e-3)


def wait_for(rate: float | None, position: int | None) -> float | None:
    if rate is None or position is None:
        return None
    return round(position / rate, 1)


class InMemoryDrainRate:
    """Completions per second per provider over a sliding window, in this process."""

    def __init__(
        self, window_seconds: float = WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._window = window_seconds
        self._clock = clock
        self._done: dict[LLMProviderType, deque[float]] = {}

    async def record(self, provider: LLMProviderType, queue_id: UUID) -> None:
        self._done.setdefault(provider, deque()).append(self._clock())

    def per_second(self, provider: LLMProviderType) -> float | None:
        """Observed rate, or None with fewer than two completions in the window."""
        done = self._done.get(provider)
        if not done:
            return None
        horizon = self._clock() - self._window
        while done and done[0] < horizon:
            done.popleft()
        return rate_of(len(done), done[-1] - done[0]) if done else None

    async def estimate_wait(self, provider: LLMProviderType, position: int | None) -> float | None:
        return wait_for(self.per_second(provider), position)


# KEYS[1] the provider's completions. ARGV: [1] ms added to TIME, [2] window ms, and for
# recording [3] the queue id and [4] how many to keep. Redis TIME is the clock, as for the
# queue, so workers' clocks do not matter.
_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('(%d', now - window))
"""
_RECORD = (
    _PRELUDE
    + """
redis.call('ZADD', KEYS[1], 'NX', string.format('%d', now), ARGV[3])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[4]) + 1))
redis.call('PEXPIRE', KEYS[1], window)
return 1
"""
)
_READ = (
    _PRELUDE
    + """
local n = redis.call('ZCARD', KEYS[1])
if n < 2 then return {n} end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
return {n, first[2], last[2]}
"""
)


class RedisDrainRate:
    """The same sliding window in Redis: one sorted set per provider (`drained:<provider>`,
    queue id by completion time in ms), written by every worker and read by every replica.
    Never raises: a Redis that cannot be reached loses one completion or gives no estimate."""

    def __init__(
        self,
        redis: Redis,
        keys: QueueKeys,
        *,
        window_seconds: float = WINDOW_SECONDS,
        time_offset_ms: Callable[[], int] = lambda: 0,
    ) -> None:
        self._keys = keys
        self._window_ms = round(window_seconds * 1000)
        self._offset = time_offset_ms
        self._record = redis.register_script(_RECORD)
        self._read = redis.register_script(_READ)

    async def record(self, provider: LLMProviderType, queue_id: UUID) -> None:
        args: list[str | int] = [self._offset(), self._window_ms, str(queue_id), MAX_KEPT]
        try:
            async with translated_redis_errors(_STORE):
                await self._record(keys=[self._keys.drained(provider)], args=args)
        except QueueUnavailableError as exc:
            logger.debug("completion of %s not counted in the drain rate: %s", queue_id, exc)

    async def per_second(self, provider: LLMProviderType) -> float | None:
        """Observed rate across every worker, or None with fewer than two completions in the
        window (or when Redis cannot be reached)."""
        try:
            async with translated_redis_errors(_STORE):
                reply = await self._read(
                    keys=[self._keys.drained(provider)], args=[self._offset(), self._window_ms]
                )
        except QueueUnavailableError:
            return None
        if int(reply[0]) < 2:
            return None
        return rate_of(int(reply[0]), (float(reply[2]) - float(reply[1])) / 1000)

    async def estimate_wait(self, provider: LLMProviderType, position: int | None) -> float | None:
        if position is None:
            return None
        return wait_for(await self.per_second(provider), position)
