"""Ports of the stores every replica shares when durable: idempotency keys, the
position-bias counts and the callers' request-rate quotas."""

from __future__ import annotations

from typing import Protocol

from common_core.enums import LLMProviderType
from services.llm_provider_service.models import IdempotencyEntry, PositionCounts


class IdempotencyStore(Protocol):
    """Idempotency keys and what their request became; shared by every replica when durable."""

    async def reserve(
        self, key: str, entry: IdempotencyEntry, *, hold_seconds: float
    ) -> IdempotencyEntry | None:
        """Atomically reserve `key` for `entry` (outcome pending) for `hold_seconds`.

        Returns None when the caller now holds the key and must `save` or `release` it, or
        the entry already stored under the key (reserved by someone else, or finished).
        Raises `QueueUnavailableError` when the store cannot be reached (the reservation may
        still land later: `release` it), or when this reservation was already released.
        """
        ...

    async def release(self, key: str, entry: IdempotencyEntry, *, fence_seconds: float) -> None:
        """Withdraw a reservation of `entry`: its request created nothing, or `reserve` raised
        and it is unknown whether the reservation was written.

        Deletes the key only while it holds this very reservation, and fences the
        reservation for `fence_seconds`, so a `reserve` of it that reaches the store later
        writes nothing. Raises `QueueUnavailableError` when the store cannot be reached.
        """
        ...

    async def save(self, key: str, entry: IdempotencyEntry, *, keep_seconds: float) -> None:
        """Store the finished entry (its outcome set) for `keep_seconds`, unless the key now
        holds another request's entry (ours lapsed and a retry reserved it since): a late save
        never replaces it."""
        ...

    async def get(self, key: str) -> IdempotencyEntry | None:
        """The entry stored under `key`, if any."""
        ...


class PositionBiasStore(Protocol):
    """Counts of which presented position won each randomized judgement, per provider and
    model, shared by every replica that shares the store (Redis) or kept per process.

    Both methods raise `QueueUnavailableError` when the backing store cannot be reached.
    """

    async def record(self, provider: LLMProviderType, model: str, *, first_won: bool) -> None:
        """Add one judgement: the first-presented essay won it, or the second did.

        Keeps at most `POSITION_BIAS_MAX_MODELS` (provider, model) entries: a judgement of
        a model beyond them is not counted (model names come from vendors' answers, and a
        store must stay bounded whatever they say).
        """
        ...

    async def counts(self) -> list[PositionCounts]:
        """Every entry with at least one judgement, sorted by provider then model."""
        ...


class RateLimiter(Protocol):
    """Each caller's requests-per-minute quota, shared by every replica that shares the
    store (Redis) or kept per process.

    The quota lets a whole minute's allowance go at once, then one request per
    `60 / per_minute` seconds (the generic cell rate algorithm).
    """

    async def acquire(self, caller: str, per_minute: int) -> float:
        """Take one request of `caller`'s allowance: 0.0 when taken, else the seconds until
        one would be (nothing is taken). Raises `QueueUnavailableError` when the store
        cannot be reached."""
        ...
