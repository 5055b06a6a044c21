"""`RedisDrainRate`: how fast each provider's queue drains, observed by every worker."""

from __future__ import annotations

import logging
from collections.abc import Callable
from uuid import UUID

from common_core.enums import LLMProviderType
from services.llm_provider_service.drain_rate import MAX_KEPT, WINDOW_SECONDS, rate_of, wait_for
from services.llm_provider_service.errors import QueueUnavailableError
from services.llm_provider_service.redis.client import RedisClient
from services.llm_provider_service.redis.errors import translated_redis_errors
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.scripts import lua, register

_STORE = "the drain rate"

logger = logging.getLogger(__name__)


class RedisDrainRate:
    """The same sliding window in Redis: one sorted set per provider (`drained:<provider>`,
    queue id by completion time in ms), written by every worker and read by every replica.
    Never raises: a Redis that cannot be reached loses one completion or gives no estimate."""

    def __init__(
        self,
        redis: RedisClient,
        keys: RedisKeys,
        *,
        window_seconds: float = WINDOW_SECONDS,
        time_offset_ms: Callable[[], int] = lambda: 0,
    ) -> None:
        self._keys = keys
        self._window_ms = round(window_seconds * 1000)
        self._offset = time_offset_ms
        self._record = register(redis, lua("drain_rate/_prelude", "drain_rate/record"))
        self._read = register(redis, lua("drain_rate/_prelude", "drain_rate/read"))

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
