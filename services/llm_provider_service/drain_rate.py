"""How fast each provider's queue drains, observed, for honest wait estimates."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from common_core.enums import LLMProviderType


class DrainRate:
    """Completions per second per provider over a sliding window."""

    def __init__(
        self, window_seconds: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._window = window_seconds
        self._clock = clock
        self._done: dict[LLMProviderType, deque[float]] = {}

    def record(self, provider: LLMProviderType) -> None:
        self._done.setdefault(provider, deque()).append(self._clock())

    def per_second(self, provider: LLMProviderType) -> float | None:
        """Observed rate, or None with fewer than two completions in the window."""
        done = self._done.get(provider)
        if not done:
            return None
        horizon = self._clock() - self._window
        while done and done[0] < horizon:
            done.popleft()
        if len(done) < 2:
            return None
        span = max(done[-1] - done[0], 1e-3)
        return (len(done) - 1) / span

    def estimate_wait(self, provider: LLMProviderType, position: int | None) -> float | None:
        """Seconds until a request at `position` is likely served, or None if unknown."""
        rate = self.per_second(provider)
        if rate is None or position is None:
            return None
        return round(position / rate, 1)
