"""`RedisPositionBiasStore`: the position-bias counts in Redis, shared by every replica."""

from __future__ import annotations

import json

from common_core.enums import LLMProviderType
from services.llm_provider_service.models import POSITION_BIAS_MAX_MODELS, PositionCounts
from services.llm_provider_service.redis.client import RedisClient
from services.llm_provider_service.redis.errors import translated_redis_errors
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.scripts import lua, register

_STORE = "the position-bias store"


def _entry(provider: LLMProviderType, model: str) -> str:
    # JSON, so that no model name (they hold "/", ":" and more) can split wrongly.
    return json.dumps([provider.value, model], separators=(",", ":"))


class RedisPositionBiasStore:
    """Two hashes keyed by (provider, model): randomized judgements, and first-position
    wins among them; one Lua script updates both (`lua/position_bias_record.lua`)."""

    def __init__(
        self, redis: RedisClient, keys: RedisKeys, max_models: int = POSITION_BIAS_MAX_MODELS
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._max_models = max_models
        self._record = register(redis, lua("position_bias_record"))

    async def record(self, provider: LLMProviderType, model: str, *, first_won: bool) -> None:
        keys = [self._keys.position_judgements, self._keys.position_first_wins]
        async with translated_redis_errors(_STORE):
            await self._record(
                keys=keys, args=[_entry(provider, model), int(first_won), self._max_models]
            )

    async def counts(self) -> list[PositionCounts]:
        async with translated_redis_errors(_STORE), self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self._keys.position_judgements)
            pipe.hgetall(self._keys.position_first_wins)
            judgements, first_wins = await pipe.execute()
        found = []
        for entry, count in judgements.items():
            provider, model = json.loads(entry)
            found.append(
                PositionCounts(
                    LLMProviderType(provider), model, int(count), int(first_wins.get(entry, 0))
                )
            )
        return sorted(found, key=lambda c: (c.provider.value, c.model))
