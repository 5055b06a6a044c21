"""`RedisResultOutbox`: result deliveries in Redis, shared by every replica's relay."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID

from common_core.enums import DeliveryChannel, DeliveryState
from services.llm_provider_service.models import Delivery, OutboxStats
from services.llm_provider_service.redis.client import RedisClient, server_time_ms
from services.llm_provider_service.redis.errors import translated_redis_errors
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.scripts import Script, lua, register

_STORE = "the result outbox"

_SCRIPTS = ("add", "claim", "retry", "finish")
# Fields kept in the hash's `record`; the rest live in their own fields and change.
_DYNAMIC = {"payload", "state", "attempts", "last_error", "next_attempt_at", "delivered_at"}


def _utc(ms: str | int) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


class RedisResultOutbox:
    """The `ResultOutbox` contract on Redis: one hash per delivery, sorted sets of the
    pending ones by due time and by age, and an index per request for the status endpoint.
    Every change is one Lua script; Redis `TIME` is the clock (shifted only in tests)."""

    def __init__(
        self,
        redis: RedisClient,
        keys: RedisKeys,
        *,
        retention_seconds: float,
        time_offset_ms: Callable[[], int] = lambda: 0,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._retention_ms = round(retention_seconds * 1000)
        self._offset = time_offset_ms
        # KEYS[1] to KEYS[4] of every outbox script, as `lua/outbox/_lib.lua` reads them.
        self._shared = (
            keys.outbox_due,
            keys.outbox_forget,
            keys.outbox_created(DeliveryChannel.KAFKA),
            keys.outbox_created(DeliveryChannel.WEBHOOK),
        )
        self._scripts: dict[str, Script] = {
            name: register(redis, lua("outbox/_lib", f"outbox/{name}")) for name in _SCRIPTS
        }

    async def _run(self, name: str, *args: Any, keys: tuple[str, ...] = ()) -> Any:
        """Run script `name` with the shared keys, then `keys` (the delivery's own)."""
        async with translated_redis_errors(_STORE):
            return await self._scripts[name](
                keys=[*self._shared, *keys], args=[self._keys.tag, self._offset(), *args]
            )

    def _delivery_key(self, delivery_id: str) -> tuple[str]:
        return (self._keys.outbox_delivery(delivery_id),)

    async def add(self, delivery: Delivery) -> bool:
        record = delivery.model_dump_json(exclude=_DYNAMIC)
        args = (
            delivery.delivery_id,
            str(delivery.request_id),
            record,
            delivery.payload,
            delivery.channel.value,
        )
        keys = (
            self._keys.outbox_delivery(delivery.delivery_id),
            self._keys.outbox_request(delivery.request_id),
        )
        return int(await self._run("add", *args, keys=keys)) == 1

    async def claim(self, *, limit: int, lease_seconds: float) -> list[Delivery]:
        rows = await self._run("claim", limit, round(lease_seconds * 1000))
        return [
            _delivery(
                {
                    "record": record,
                    "payload": payload,
                    "state": DeliveryState.PENDING.value,
                    "attempts": attempts,
                    "last_error": last_error,
                    "next_attempt_at": next_at,
                }
            )
            for record, payload, attempts, last_error, next_at in rows
        ]

    async def delivered(self, delivery_id: str) -> None:
        args = (delivery_id, "delivered", self._retention_ms, "")
        await self._run("finish", *args, keys=self._delivery_key(delivery_id))

    async def retry(self, delivery_id: str, *, delay_seconds: float, error: str) -> None:
        args = (delivery_id, round(delay_seconds * 1000), error)
        await self._run("retry", *args, keys=self._delivery_key(delivery_id))

    async def give_up(self, delivery_id: str, *, error: str) -> None:
        args = (delivery_id, "failed", self._retention_ms, error)
        await self._run("finish", *args, keys=self._delivery_key(delivery_id))

    async def for_request(self, request_id: UUID) -> list[Delivery]:
        keys = self._keys
        async with translated_redis_errors(_STORE):
            ids = sorted(
                cast(set[str], await self._redis.smembers(keys.outbox_request(request_id)))
            )
            if not ids:
                return []
            async with self._redis.pipeline(transaction=False) as pipe:
                for delivery_id in ids:
                    pipe.hgetall(keys.outbox_delivery(delivery_id))
                pipe.zmscore(keys.outbox_forget, ids)
                *rows, forget_at = await pipe.execute()
            now_ms = await server_time_ms(self._redis, keys.outbox_forget) + self._offset()
        # Past its retention but not yet purged (purging happens in `claim`): already gone.
        found = [
            _delivery(row)
            for row, forget in zip(rows, forget_at, strict=True)
            if row and (forget is None or forget > now_ms)
        ]
        return sorted(found, key=lambda d: d.channel.value)

    async def stats(self) -> OutboxStats:
        keys = self._keys
        async with translated_redis_errors(_STORE):
            async with self._redis.pipeline(transaction=False) as pipe:
                for channel in DeliveryChannel:
                    pipe.zcard(keys.outbox_created(channel))
                    pipe.zrange(keys.outbox_created(channel), 0, 0, withscores=True)
                rows = await pipe.execute()
            now_ms = await server_time_ms(self._redis, keys.outbox_due) + self._offset()
        pending: dict[DeliveryChannel, int] = {}
        oldest: list[int] = []
        for channel, count, first in zip(DeliveryChannel, rows[::2], rows[1::2], strict=True):
            if int(count):
                pending[channel] = int(count)
            oldest.extend(int(score) for _, score in first)
        age = max(0, now_ms - min(oldest)) / 1000 if oldest else None
        return OutboxStats(pending=pending, oldest_age_seconds=age)


def _delivery(h: dict[str, Any]) -> Delivery:
    """A delivery from its hash fields (the static `record` JSON and the changing rest)."""
    return Delivery.model_validate(
        {
            **json.loads(h["record"]),
            "payload": h.get("payload", ""),
            "state": h["state"],
            "attempts": int(h["attempts"]),
            "last_error": h.get("last_error") or None,
            "next_attempt_at": _utc(h["next_attempt_at"]) if h.get("next_attempt_at") else None,
            "delivered_at": _utc(h["delivered_at"]) if h.get("delivered_at") else None,
        }
    )
