"""The development response cache in Redis, falling back to process memory if Redis fails."""

from __future__ import annotations

import logging

from services.llm_provider_service.cache.memory import InMemoryResponseCache
from services.llm_provider_service.errors import QueueUnavailableError
from services.llm_provider_service.models import Judgement
from services.llm_provider_service.redis.client import RedisClient
from services.llm_provider_service.redis.errors import translated_redis_errors
from services.llm_provider_service.redis.keys import RedisKeys

_STORE = "the development cache"

logger = logging.getLogger(__name__)


class RedisResponseCache:
    """Shared by the replicas of a development stack; a Redis failure is a cache miss (and
    the write goes to the in-process fallback), never an error for the request."""

    def __init__(
        self, redis: RedisClient, keys: RedisKeys, fallback: InMemoryResponseCache, ttl_seconds: int
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._fallback = fallback
        self._ttl = ttl_seconds

    async def get(self, key: str) -> Judgement | None:
        try:
            async with translated_redis_errors(_STORE):
                raw = await self._redis.get(self._keys.response_cache(key))
        except QueueUnavailableError as exc:
            logger.debug("response cache read fell back to memory: %s", exc)
            return await self._fallback.get(key)
        return None if raw is None else Judgement.model_validate_json(raw)

    async def put(self, key: str, judgement: Judgement) -> None:
        try:
            async with translated_redis_errors(_STORE):
                await self._redis.set(
                    self._keys.response_cache(key), judgement.model_dump_json(), ex=self._ttl
                )
        except QueueUnavailableError as exc:
            logger.debug("response cache write fell back to memory: %s", exc)
            await self._fallback.put(key, judgement)
