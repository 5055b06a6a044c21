"""Result deliveries the outbox could not take yet, held in process memory.

A request answered on the request path owes its result event to the outbox before the
response goes out. When the outbox's store (Redis) cannot be reached at that moment,
`OwedResults` `keep`s the deliveries here instead of dropping them, and the relay of the
same process `flush`es them into the outbox at each pass until the store answers again (the
outbox ignores a delivery id it already has, so a partly written batch is no trouble).

Bounded: past `max_deliveries` a batch is refused whole (the caller counts it as lost). What
is held here dies with the process; the relay tries a last flush when it stops.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from services.llm_provider_service.models import Delivery
from services.llm_provider_service.protocols import ResultOutbox


class UnsavedDeliveries:
    """A bounded first-in, first-out hold of deliveries waiting for the outbox."""

    def __init__(self, *, max_deliveries: int) -> None:
        if max_deliveries <= 0:
            raise ValueError("max_deliveries must be positive")
        self._max = max_deliveries
        self._held: deque[Delivery] = deque()

    def __len__(self) -> int:
        return len(self._held)

    def keep(self, deliveries: Sequence[Delivery]) -> bool:
        """Hold all of `deliveries`, or none (False) when they do not fit."""
        if len(self._held) + len(deliveries) > self._max:
            return False
        self._held.extend(deliveries)
        return True

    async def flush(self, outbox: ResultOutbox) -> int:
        """Add the held deliveries to `outbox`, oldest first; returns how many left the hold.
        Raises QueueUnavailableError (keeping that one and the rest) if the store is still
        unreachable."""
        moved = 0
        while self._held:
            await outbox.add(self._held[0])
            self._held.popleft()
            moved += 1
        return moved
