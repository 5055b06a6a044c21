"""`InMemoryIdempotencyStore`: idempotency keys in this process, for development and tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from uuid import UUID

from services.llm_provider_service.errors import QueueUnavailableError
from services.llm_provider_service.models import IdempotencyEntry


class InMemoryIdempotencyStore:
    """Keys live in one process's memory and are lost on restart, like the in-memory queue."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[str, tuple[float, IdempotencyEntry]] = {}
        self._fences: dict[tuple[str, UUID], float] = {}

    async def reserve(
        self, key: str, entry: IdempotencyEntry, *, hold_seconds: float
    ) -> IdempotencyEntry | None:
        fenced = self._fences.get((key, entry.request_id))
        if fenced is not None and fenced > self._clock():
            raise QueueUnavailableError("this reservation was withdrawn; retry", retry_after=1.0)
        existing = await self.get(key)
        if existing is not None:
            return existing
        self._entries[key] = (self._clock() + hold_seconds, entry)
        return None

    async def release(self, key: str, entry: IdempotencyEntry, *, fence_seconds: float) -> None:
        now = self._clock()
        self._fences = {fence: until for fence, until in self._fences.items() if until > now}
        self._fences[(key, entry.request_id)] = now + fence_seconds
        found = self._entries.get(key)
        if found is not None and found[1] == entry:
            del self._entries[key]

    async def save(self, key: str, entry: IdempotencyEntry, *, keep_seconds: float) -> None:
        current = await self.get(key)
        if current is not None and current.request_id != entry.request_id:
            return  # another request's reservation, taken after ours lapsed: not ours to replace
        self._entries[key] = (self._clock() + keep_seconds, entry)

    async def get(self, key: str) -> IdempotencyEntry | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if found[0] <= self._clock():
            del self._entries[key]
            return None
        return found[1]
