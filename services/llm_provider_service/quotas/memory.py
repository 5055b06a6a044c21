"""`InMemoryRateLimiter`: per-caller request rates in this process, for the embedded default."""

from __future__ import annotations

import time
from collections.abc import Callable


class InMemoryRateLimiter:
    """The GCRA of `redis/lua/rate_acquire.lua` in process memory (one replica's view only)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tat: dict[str, float] = {}

    async def acquire(self, caller: str, per_minute: int) -> float:
        now = self._clock()
        interval = 60.0 / per_minute
        tat = max(self._tat.get(caller, now), now)
        allow_at = tat - (per_minute - 1) * interval
        if now < allow_at:
            return allow_at - now
        self._tat[caller] = tat + interval
        return 0.0
