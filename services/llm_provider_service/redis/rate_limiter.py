"""`RedisRateLimiter`: per-caller request rates in Redis, one rate shared by every replica."""

from __future__ import annotations

from collections.abc import Callable

from services.llm_provider_service.redis.client import RedisClient
from services.llm_provider_service.redis.errors import translated_redis_errors
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.scripts import lua, register

_STORE = "the rate limiter"


class RedisRateLimiter:
    """One GCRA key per caller (`lua/rate_acquire.lua`); Redis TIME is the clock."""

    def __init__(
        self, redis: RedisClient, keys: RedisKeys, *, time_offset_ms: Callable[[], int] = lambda: 0
    ) -> None:
        self._keys = keys
        self._offset = time_offset_ms
        self._acquire = register(redis, lua("rate_acquire"))

    async def acquire(self, caller: str, per_minute: int) -> float:
        interval_ms = 60_000 / per_minute
        async with translated_redis_errors(_STORE):
            wait_ms = await self._acquire(
                keys=[self._keys.rate(caller)],
                args=[round(interval_ms), per_minute, self._offset()],
            )
        return int(wait_ms) / 1000
