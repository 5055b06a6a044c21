"""`RedisRateLimiter`: per-caller request rates in Redis, one rate shared by every replica."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

from redis.asyncio import Redis

from services.llm_provider_service.queue.keys import QueueKeys
from services.llm_provider_service.redis_errors import translated_redis_errors

_STORE = "the rate limiter"


class RedisRateLimiter:
    """One GCRA key per caller (`lua/acquire.lua`); Redis TIME is the clock."""

    def __init__(
        self, redis: Redis, keys: QueueKeys, *, time_offset_ms: Callable[[], int] = lambda: 0
    ) -> None:
        self._keys = keys
        self._offset = time_offset_ms
        script = resources.files("services.llm_provider_service.quotas") / "lua" / "acquire.lua"
        self._acquire = redis.register_script(script.read_text())

    async def acquire(self, caller: str, per_minute: int) -> float:
        interval_ms = 60_000 / per_minute
        async with translated_redis_errors(_STORE):
            wait_ms = await self._acquire(
                keys=[self._keys.rate(caller)],
                args=[round(interval_ms), per_minute, self._offset()],
            )
        return int(wait_ms) / 1000
