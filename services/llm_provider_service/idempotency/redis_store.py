"""`RedisIdempotencyStore`: idempotency keys in Redis, shared by every replica."""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis

from services.llm_provider_service.errors import QueueUnavailableError
from services.llm_provider_service.idempotency.models import IdempotencyEntry
from services.llm_provider_service.queue.keys import QueueKeys
from services.llm_provider_service.queue.redis_queue import translated_redis_errors


class RedisIdempotencyStore:
    """One string per key (the client's key hashed, so any length or charset is safe),
    written with SET NX so concurrent retries agree on a single request."""

    def __init__(self, redis: Redis, keys: QueueKeys) -> None:
        self._redis = redis
        self._keys = keys

    def _key(self, key: str) -> str:
        return self._keys.idempotency(hashlib.sha256(key.encode()).hexdigest())

    async def reserve(
        self, key: str, entry: IdempotencyEntry, *, hold_seconds: float
    ) -> IdempotencyEntry | None:
        for _ in range(3):  # the holder's entry may expire between our SET NX and GET
            async with translated_redis_errors():
                won = await self._redis.set(
                    self._key(key), entry.model_dump_json(), nx=True, px=_ms(hold_seconds)
                )
            if won:
                return None
            if (existing := await self.get(key)) is not None:
                return existing
        raise QueueUnavailableError("idempotency key kept changing; retry", retry_after=1.0)

    async def save(self, key: str, entry: IdempotencyEntry, *, keep_seconds: float) -> None:
        async with translated_redis_errors():
            await self._redis.set(self._key(key), entry.model_dump_json(), px=_ms(keep_seconds))

    async def forget(self, key: str) -> None:
        async with translated_redis_errors():
            await self._redis.delete(self._key(key))

    async def get(self, key: str) -> IdempotencyEntry | None:
        async with translated_redis_errors():
            raw = await self._redis.get(self._key(key))
        return None if raw is None else IdempotencyEntry.model_validate_json(raw)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
