"""`InMemoryIdempotencyStore`: idempotency keys in this process, for development and tests."""

from __future__ import annotations

import time
from collections.abc import Callable

from services.llm_provider_service.idempotency.models import IdempotencyEntry


class InMemoryIdempotencyStore:
    """Keys live in one process's memory and are lost on restart, like the in-memory queue."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[str, tuple[float, IdempotencyEntry]] = {}

    async def reserve(
        self, key: str, entry: IdempotencyEntry, *, hold_seconds: float
    ) -> IdempotencyEntry | None:
        existing = await self.get(key)
        if existing is not None:
            return existing
        self._entries[key] = (self._clock() + hold_seconds, entry)
        return None

    async def save(self, key: str, entry: IdempotencyEntry, *, keep_seconds: float) -> None:
        self._entries[key] = (self._clock() + keep_seconds, entry)

    async def forget(self, key: str) -> None:
        self._entries.pop(key, None)

    async def get(self, key: str) -> IdempotencyEntry | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if found[0] <= self._clock():
            del self._entries[key]
            return None
        return found[1]
