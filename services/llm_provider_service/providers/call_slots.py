"""A vendor's concurrency limit, whose wait for a free slot counts toward the call's timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from common_core.enums import LLMProviderType
from services.llm_provider_service.errors import ProviderTimeoutError

_MIN_CALL_SECONDS = 0.001  # a slot taken at the very end of the budget: the call times out


class CallSlots:
    """At most `limit` calls to one vendor in flight at once in this process.

    `slot(budget)` waits for a free slot at most `budget` seconds (the call's overall
    deadline: its timeout plus the adapter's grace second) and yields the seconds of that
    budget left for the call itself, so a request never waits for a slot and then for the
    vendor beyond its deadline. A wait that runs out raises `ProviderTimeoutError` (504,
    retryable, `details.reason` "slot_wait") saying it waited for a slot: the vendor is
    answering too slowly for the calls this process sends it.
    """

    def __init__(self, provider: LLMProviderType, limit: int) -> None:
        self._provider = provider
        self._limit = limit
        self._semaphore = asyncio.Semaphore(limit)

    @asynccontextmanager
    async def slot(self, budget: float) -> AsyncIterator[float]:
        started = time.monotonic()
        try:
            async with asyncio.timeout(budget):
                await self._semaphore.acquire()
        except TimeoutError:
            raise ProviderTimeoutError(
                self._provider,
                f"{self._provider.value} was not called within {budget:g} s: the request "
                f"waited all that time for a free call slot ({self._limit} calls to it "
                "already in flight)",
                details={"reason": "slot_wait"},
            ) from None
        try:
            yield max(_MIN_CALL_SECONDS, budget - (time.monotonic() - started))
        finally:
            self._semaphore.release()


def call_timeout(timeout: float, left: float) -> float:
    """The SDK's timeout for a call with `left` seconds of its deadline after the wait for a
    slot: its own `timeout`, or less when the wait ate into the grace."""
    return min(timeout, left)
