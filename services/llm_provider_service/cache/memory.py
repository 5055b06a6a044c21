"""The development response cache in process memory (LRU with a TTL), and the disabled one."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from services.llm_provider_service.models import Judgement


class InMemoryResponseCache:
    """Least-recently-used judgements, each for `ttl_seconds`. Development and testing only:
    `Settings` refuses ENABLE_RESPONSE_CACHE in staging and production."""

    def __init__(
        self,
        max_entries: int = 1000,
        ttl_seconds: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max = max_entries
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Judgement]] = OrderedDict()

    async def get(self, key: str) -> Judgement | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if found[0] <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return found[1]

    async def put(self, key: str, judgement: Judgement) -> None:
        self._entries[key] = (self._clock() + self._ttl, judgement)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)


class NoResponseCache:
    """What staging and production bind: nothing is ever stored or served."""

    async def get(self, key: str) -> Judgement | None:
        return None

    async def put(self, key: str, judgement: Judgement) -> None:
        return None
