"""How fast each provider's queue drains, observed, for honest wait estimates.

The `DrainRate` port (`protocols/queue.py`) has two adapters: `InMemoryDrainRate`, with the
in-memory queue (one process is the whole service), and `RedisDrainRate`
(`redis/drain_rate.py`), with the Redis queue, where every worker records its completions in
Redis and every replica, API-only ones included, estimates from the same numbers.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from uuid import UUID

from common_core.enums import LLMProviderType

WINDOW_SECONDS = 300.0
# At most this many completions are kept per provider in Redis (the newest): past it the
# window is shorter than WINDOW_SECONDS, and the rate is still right.
MAX_KEPT = 10_000


def rate_of(completions: int, span_seconds: float) -> float | None:
    """(completions - 1) / the time they span; None with fewer than two."""
    if completions < 2:
        return None
    return (completions - 1) / max(span_seconds, 1e-3)


def wait_for(rate: float | None, position: int | None) -> float | None:
    if rate is None or position is None:
        return None
    return round(position / rate, 1)


class InMemoryDrainRate:
    """Completions per second per provider over a sliding window, in this process."""

    def __init__(
        self, window_seconds: float = WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._window = window_seconds
        self._clock = clock
        self._done: dict[LLMProviderType, deque[float]] = {}

    async def record(self, provider: LLMProviderType, queue_id: UUID) -> None:
        self._done.setdefault(provider, deque()).append(self._clock())

    def per_second(self, provider: LLMProviderType) -> float | None:
        """Observed rate, or None with fewer than two completions in the window."""
        done = self._done.get(provider)
        if not done:
            return None
        horizon = self._clock() - self._window
        while done and done[0] < horizon:
            done.popleft()
        return rate_of(len(done), done[-1] - done[0]) if done else None

    async def estimate_wait(self, provider: LLMProviderType, position: int | None) -> float | None:
        return wait_for(self.per_second(provider), position)
