"""`QueueShards`: the request queue's shards on a Redis Cluster, one `RedisRequestQueue` per
provider under a hash tag of its own, and how a call finds the shard it belongs to."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from uuid import UUID

from common_core.enums import LLMProviderType
from services.llm_provider_service.errors import QueueUnavailableError
from services.llm_provider_service.redis.client import RedisClient
from services.llm_provider_service.redis.errors import translated_redis_errors
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.queue import RedisRequestQueue
from services.llm_provider_service.settings import QueueSettings

logger = logging.getLogger(__name__)

STORE = "the request queue"
# How many queue ids this process remembers the shard of. A hint that saves asking every
# shard; a forgotten one costs a lookup, never a wrong answer (`shard_of`).
_REMEMBERED_IDS = 10_000
# After a shard could not be reached, how long calls that only *consult* it (the global
# limits of an enqueue to another shard, the wake-up signal) skip it: a master that is down
# costs each call seconds of the cluster client's retries, which must not slow the live shards.
SKIP_SECONDS = 5.0


class Skips:
    """Shards (by name) that just failed a call which may do without them, until when; and
    which shards are down, so that each outage is logged once (a WARNING when it starts, an
    INFO when it ends), not on every pass of the worker's loop."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._down: set[str] = set()

    def failed(self, shard: str, consequence: str) -> None:
        if shard not in self._down:
            self._down.add(shard)
            logger.warning("queue shard %s unreachable; %s", shard, consequence)

    def answered(self, shard: str) -> None:
        if shard in self._down:
            self._down.discard(shard)
            logger.info("queue shard %s answers again", shard)

    def skipped(self, shard: str) -> bool:
        return time.monotonic() < self._until.get(shard, 0.0)

    def skip(self, shard: str) -> None:
        self._until[shard] = time.monotonic() + SKIP_SECONDS


class QueueShards:
    """The queue of provider `p` is a `RedisRequestQueue` under the tag `{prefix:p}`: its
    keys share one slot, so its scripts stay atomic, and the providers' slots spread over
    the masters. A request lives in its provider's shard for its whole life."""

    def __init__(
        self,
        redis: RedisClient,
        keys: RedisKeys,
        config: QueueSettings,
        *,
        time_offset_ms: Callable[[], int],
        reap_limit: int,
        batch_lane: bool = False,
    ) -> None:
        self._redis = redis
        self.keys = {provider: keys.sharded(provider.value) for provider in LLMProviderType}
        self._queues = {
            provider: RedisRequestQueue(
                redis,
                shard,
                config,
                time_offset_ms=time_offset_ms,
                reap_limit=reap_limit,
                batch_lane=batch_lane,
            )
            for provider, shard in self.keys.items()
        }
        self._seen: OrderedDict[UUID, LLMProviderType] = OrderedDict()
        self._last_depth: dict[LLMProviderType, int] = {}
        self.skips = Skips()

    def __getitem__(self, provider: LLMProviderType) -> RedisRequestQueue:
        return self._queues[provider]

    def __iter__(self) -> Iterator[tuple[LLMProviderType, RedisRequestQueue]]:
        return iter(self._queues.items())

    def remember(self, queue_id: UUID, provider: LLMProviderType) -> None:
        """`queue_id` is in `provider`'s shard (a bounded hint for `shard_of`)."""
        self._seen[queue_id] = provider
        self._seen.move_to_end(queue_id)
        if len(self._seen) > _REMEMBERED_IDS:
            self._seen.popitem(last=False)

    async def shard_of(self, queue_id: UUID) -> RedisRequestQueue | None:
        """The shard that holds `queue_id`'s record (it is in exactly one): the one this
        process last saw it in if the record is there, else whichever has it, every shard
        asked at once (one EXISTS each: a pipeline would fail whole with one master down).
        None if no shard has it; `QueueUnavailableError` if the remembered shard cannot be
        asked, or none has it but some shard could not be asked (it may be there)."""
        hint = self._seen.get(queue_id)
        if hint is not None and await self._holds(hint, queue_id):
            return self._queues[hint]
        providers = [provider for provider in self._queues if provider is not hint]
        found = await asyncio.gather(
            *(self._holds(provider, queue_id) for provider in providers), return_exceptions=True
        )
        for provider, held in zip(providers, found, strict=True):
            if held is True:
                self.remember(queue_id, provider)
                return self._queues[provider]
        for held in found:
            if isinstance(held, BaseException):
                raise held
        return None

    async def _holds(self, provider: LLMProviderType, queue_id: UUID) -> bool:
        async with translated_redis_errors(STORE):
            return bool(await self._redis.exists(self.keys[provider].request(str(queue_id))))

    async def held_elsewhere(
        self, provider: LLMProviderType, caller: str | None
    ) -> tuple[int, int]:
        """What the shards other than `provider`'s hold: waiting requests, and `caller`'s
        waiting or running ones (0 without a caller), read now. A shard that cannot be read
        counts as the depth it last had, and 0 of the caller's."""
        held = await asyncio.gather(
            *(self._held(other, caller) for other in self._queues if other is not provider)
        )
        return sum(depth for depth, _ in held), sum(active for _, active in held)

    async def _held(self, provider: LLMProviderType, caller: str | None) -> tuple[int, int]:
        keys = self.keys[provider]
        if self.skips.skipped(provider.value):
            return self._last_depth.get(provider, 0), 0
        try:
            async with (
                translated_redis_errors(STORE),
                self._redis.pipeline(transaction=False) as pipe,
            ):
                pipe.zcard(keys.expiry)
                if caller:
                    pipe.zcard(keys.active(caller))
                counts = await pipe.execute()
        except QueueUnavailableError:
            self.skips.failed(provider.value, "counting its last depth in the queue's limits")
            self.skips.skip(provider.value)
            return self._last_depth.get(provider, 0), 0
        self.skips.answered(provider.value)
        self._last_depth[provider] = int(counts[0])
        return int(counts[0]), int(counts[1]) if caller else 0
