"""`InMemoryResultOutbox`: the outbox in one process's memory, for development and tests."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

from common_core.enums import DeliveryState
from services.llm_provider_service.models import Delivery, OutboxStats


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


class InMemoryResultOutbox:
    """The `ResultOutbox` contract in memory; pending deliveries are lost on restart, like
    the in-memory queue they come from. `clock` (epoch seconds) is its only time source."""

    def __init__(self, *, retention_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self._retention = retention_seconds
        self._clock = clock
        self._deliveries: dict[str, Delivery] = {}
        self._due: dict[str, float] = {}  # pending id -> due time
        self._added: dict[str, float] = {}  # pending id -> when added, on this clock
        self._forget_at: dict[str, float] = {}  # ended id -> when it is dropped

    async def add(self, delivery: Delivery) -> bool:
        self._purge()
        if delivery.delivery_id in self._deliveries:
            return False
        now = self._clock()
        self._deliveries[delivery.delivery_id] = delivery.model_copy(
            update={"state": DeliveryState.PENDING, "attempts": 0, "next_attempt_at": _utc(now)}
        )
        self._due[delivery.delivery_id] = now
        self._added[delivery.delivery_id] = now
        return True

    async def claim(self, *, limit: int, lease_seconds: float) -> list[Delivery]:
        self._purge()
        now = self._clock()
        due = sorted((at, d) for d, at in self._due.items() if at <= now)[:limit]
        claimed = []
        for _, delivery_id in due:
            entry = self._deliveries[delivery_id]
            entry.attempts += 1
            entry.next_attempt_at = _utc(now + lease_seconds)
            self._due[delivery_id] = now + lease_seconds
            claimed.append(entry.model_copy())
        return claimed

    async def delivered(self, delivery_id: str) -> None:
        self._end(delivery_id, DeliveryState.DELIVERED, error=None)

    async def retry(self, delivery_id: str, *, delay_seconds: float, error: str) -> None:
        if delivery_id not in self._due:
            return
        at = self._clock() + delay_seconds
        self._due[delivery_id] = at
        entry = self._deliveries[delivery_id]
        entry.last_error = error
        entry.next_attempt_at = _utc(at)

    async def give_up(self, delivery_id: str, *, error: str) -> None:
        self._end(delivery_id, DeliveryState.FAILED, error=error)

    async def for_request(self, request_id: UUID) -> list[Delivery]:
        self._purge()
        found = [d for d in self._deliveries.values() if d.request_id == request_id]
        return sorted((d.model_copy() for d in found), key=lambda d: d.channel.value)

    async def stats(self) -> OutboxStats:
        pending = Counter(self._deliveries[d].channel for d in self._due)
        oldest = max(0.0, self._clock() - min(self._added.values())) if self._added else None
        return OutboxStats(pending=dict(pending), oldest_age_seconds=oldest)

    def _end(self, delivery_id: str, state: DeliveryState, *, error: str | None) -> None:
        if self._due.pop(delivery_id, None) is None:
            return  # already ended, or never added
        del self._added[delivery_id]
        now = self._clock()
        entry = self._deliveries[delivery_id]
        entry.state = state
        entry.next_attempt_at = None
        if state is DeliveryState.DELIVERED:
            entry.delivered_at = _utc(now)
        if error is not None:
            entry.last_error = error
        entry.payload = ""  # sent or abandoned: only its state stays readable
        self._forget_at[delivery_id] = now + self._retention

    def _purge(self) -> None:
        now = self._clock()
        for delivery_id, at in list(self._forget_at.items()):
            if at <= now:
                del self._forget_at[delivery_id]
                del self._deliveries[delivery_id]
