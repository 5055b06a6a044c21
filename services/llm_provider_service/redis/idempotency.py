"""`RedisIdempotencyStore`: idempotency keys in Redis, shared by every replica."""

from __future__ import annotations

import hashlib

from services.llm_provider_service.errors import QueueUnavailableError
from services.llm_provider_service.models import IdempotencyEntry
from services.llm_provider_service.redis.client import RedisClient
from services.llm_provider_service.redis.errors import translated_redis_errors
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.scripts import lua, register

_STORE = "the idempotency store"


class RedisIdempotencyStore:
    """One string per key (the client's key hashed, so any length or charset is safe),
    written with SET NX so concurrent retries agree on a single request.

    A reservation is written by a script that first checks its fence
    (`RedisKeys.idempotency_fence`), which `release` sets: so a reservation whose reply was lost
    (Redis stalled, the caller got a 503) cannot land after it was released and hold the key.
    The stored value is the plain `IdempotencyEntry` JSON, as before, so every version reads it.
    The scripts are `lua/idempotency/`.
    """

    def __init__(self, redis: RedisClient, keys: RedisKeys) -> None:
        self._redis = redis
        self._keys = keys
        self._reserve = register(redis, lua("idempotency/reserve"))
        self._release = register(redis, lua("idempotency/release"))
        self._save = register(redis, lua("idempotency/save"))

    def _key(self, key: str) -> str:
        return self._keys.idempotency(_hashed(key))

    def _fence(self, key: str, entry: IdempotencyEntry) -> str:
        return self._keys.idempotency_fence(_hashed(key), entry.request_id)

    async def reserve(
        self, key: str, entry: IdempotencyEntry, *, hold_seconds: float
    ) -> IdempotencyEntry | None:
        keys = [self._key(key), self._fence(key, entry)]
        args: list[str | int] = [entry.model_dump_json(), _ms(hold_seconds)]
        for _ in range(3):  # the holder's entry may expire between our SET NX and GET
            async with translated_redis_errors(_STORE):
                reply = await self._reserve(keys=keys, args=args)
            outcome = _text(reply[0])
            if outcome == "reserved":
                return None
            if outcome == "withdrawn":
                raise QueueUnavailableError(
                    "this reservation was withdrawn; retry", retry_after=1.0
                )
            if len(reply) > 1 and reply[1] is not None:
                return IdempotencyEntry.model_validate_json(reply[1])
        raise QueueUnavailableError("idempotency key kept changing; retry", retry_after=1.0)

    async def release(self, key: str, entry: IdempotencyEntry, *, fence_seconds: float) -> None:
        async with translated_redis_errors(_STORE):
            await self._release(
                keys=[self._key(key), self._fence(key, entry)],
                args=[entry.model_dump_json(), _ms(fence_seconds)],
            )

    async def save(self, key: str, entry: IdempotencyEntry, *, keep_seconds: float) -> None:
        mark = f'"request_id":"{entry.request_id}"'
        async with translated_redis_errors(_STORE):
            await self._save(
                keys=[self._key(key)], args=[entry.model_dump_json(), _ms(keep_seconds), mark]
            )

    async def get(self, key: str) -> IdempotencyEntry | None:
        async with translated_redis_errors(_STORE):
            raw = await self._redis.get(self._key(key))
        return None if raw is None else IdempotencyEntry.model_validate_json(raw)


def _hashed(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
