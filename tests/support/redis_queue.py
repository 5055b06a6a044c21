"""Building `RedisRequestQueue`s for tests: isolated key prefixes and a movable clock."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from redis.asyncio import Redis

from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.queue import RedisRequestQueue
from services.llm_provider_service.settings import QueueSettings


@dataclass
class ShiftedTime:
    """Milliseconds added to Redis TIME, so a test can move the queue's time forward."""

    offset_ms: int = 0

    def __call__(self) -> int:
        return self.offset_ms

    def advance(self, seconds: float) -> None:
        self.offset_ms += round(seconds * 1000)


@dataclass
class QueueBuilder:
    redis: Redis
    time: ShiftedTime = field(default_factory=ShiftedTime)
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:12]}")

    def build(self, config: QueueSettings) -> RedisRequestQueue:
        return RedisRequestQueue(
            self.redis, RedisKeys(self.prefix), config, time_offset_ms=self.time
        )
