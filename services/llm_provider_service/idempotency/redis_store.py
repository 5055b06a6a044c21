"""`RedisIdempotencyStore`: idempotency keys in Redis, shared by every replica."""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis

from services.llm_provider_service.errors import QueueUnavailableError
from services.llm_provider_service.models import IdempotencyEntry
from services.llm_provider_service.queue.keys import QueueKeys
from services.llm_provider_service.redis_errors import translated_redis_errors

_STORE = "the idempotency store"

# KEYS: the key, the reservation's fence. ARGV: the entry, the hold in ms.
# A withdrawn reservation (its fence set by `release`) is never written, however late its
# command reaches Redis; else SET NX, and the entry already there when it is taken.
_RESERVE = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {'withdrawn'}
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {'reserved'}
end
return {'taken', redis.call('GET', KEYS[1])}
"""

# KEYS: the key, the reservation's fence. ARGV: the entry, the fence's life in ms.
# Fences the reservation first, then deletes the key only if it still holds this very
# reservation: a newer one, or a finished entry, is left alone.
_RELEASE = """
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


# KEYS: the key. ARGV: the finished entry, its life in ms, its `"request_id":"…"` in JSON.
# Writes only over nothing (a lapsed reservation) or over this request's own entry: a late
# save, retried while Redis was away, never replaces a reservation another request took since.
_SAVE = """
local current = redis.call('GET', KEYS[1])
if current and not string.find(current, ARGV[3], 1, true) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


class RedisIdempotencyStore:
    """One string per key (the client's key hashed, so any length or charset is safe),
    written with SET NX so concurrent retries agree on a single request.

    A reservation is written by a script that first checks its fence
    (`<key>:fence:<request_id>`), which `release` sets: so a reservation whose reply was lost
    (Redis stalled, the caller got a 503) cannot land after it was released and hold the key.
    The stored value is the plain `IdempotencyEntry` JSON, as before, so every version reads it.
    """

    def __init__(self, redis: Redis, keys: QueueKeys) -> None:
        self._redis = redis
        self._keys = keys
        self._reserve = redis.register_script(_RESERVE)
        self._release = redis.register_script(_RELEASE)
        self._save = redis.register_script(_SAVE)

    def _key(self, key: str) -> str:
        return self._keys.idempotency(hashlib.sha256(key.encode()).hexdigest())

    def _fence(self, key: str, entry: IdempotencyEntry) -> str:
        return f"{self._key(key)}:fence:{entry.request_id}"

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


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
