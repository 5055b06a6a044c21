"""`RedisSpillStore`: the batch lane's write-ahead records in Redis, shared by every replica."""

from __future__ import annotations

from collections.abc import Sequence

from services.llm_provider_service.batch.models import ProviderBatch
from services.llm_provider_service.batch.spill_codec import batch_json, record_json, record_of
from services.llm_provider_service.protocols.batch import SpillRecord, SpillState
from services.llm_provider_service.redis.client import RedisClient
from services.llm_provider_service.redis.errors import translated_redis_errors
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.scripts import lua, register

_STORE = "the spill store"


class RedisSpillStore:
    """The `SpillStore` contract: a hash per spill (`spill`), its settled custom ids
    (`spill_settled`), its holder (`spill_hold`) and the index of open spills (`spills`),
    all under one hash tag, so each step is one atomic transaction or script."""

    def __init__(self, redis: RedisClient, keys: RedisKeys) -> None:
        self._redis = redis
        self._keys = keys
        self._take = register(redis, lua("spill/take"))
        self._update = register(redis, lua("spill/update"))

    async def begin(self, record: SpillRecord) -> None:
        k = self._keys
        ms = int(record.started_at.timestamp() * 1000)
        async with translated_redis_errors(_STORE), self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                k.spill(record.spill_id),
                mapping={"record": record_json(record), "state": record.state.value},
            )
            pipe.zadd(k.spills, {record.spill_id: ms})
            await pipe.execute()

    async def submitted(self, spill_id: str, batch: ProviderBatch) -> None:
        await self._updated(spill_id, "submitted", batch_json(batch))

    async def settle(self, spill_id: str, custom_ids: Sequence[str]) -> None:
        if custom_ids:
            await self._updated(spill_id, "settle", *custom_ids)

    async def _updated(self, spill_id: str, *args: str) -> None:
        keys = [self._keys.spill(spill_id), self._keys.spill_settled(spill_id)]
        async with translated_redis_errors(_STORE):
            await self._update(keys=keys, args=list(args))

    async def get(self, spill_id: str) -> SpillRecord | None:
        k = self._keys
        async with translated_redis_errors(_STORE), self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(k.spill(spill_id))
            pipe.smembers(k.spill_settled(spill_id))
            fields, settled = await pipe.execute()
        if not fields:
            return None
        return record_of(
            fields["record"],
            fields.get("state", SpillState.SUBMITTING.value),
            fields.get("batch"),
            frozenset(settled),
        )

    async def open(self) -> list[SpillRecord]:
        async with translated_redis_errors(_STORE):
            spill_ids = await self._redis.zrange(self._keys.spills, 0, -1)
        found = []
        for spill_id in spill_ids:
            record = await self.get(str(spill_id))
            if record is not None:
                found.append(record)
        return found

    async def finish(self, spill_id: str) -> None:
        k = self._keys
        async with translated_redis_errors(_STORE), self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(k.spill(spill_id), k.spill_settled(spill_id), k.spill_hold(spill_id))
            pipe.zrem(k.spills, spill_id)
            await pipe.execute()

    async def take(self, spill_id: str, owner: str, seconds: float) -> bool:
        keys = [self._keys.spill_hold(spill_id), self._keys.spill(spill_id)]
        async with translated_redis_errors(_STORE):
            held = await self._take(keys=keys, args=[owner, max(1, int(seconds * 1000))])
        return bool(held)
