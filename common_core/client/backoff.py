"""When to try again: exponential backoff with jitter, the server's Retry-After as a floor,
and the retry loop the client uses for every call it may repeat."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from common_core.client.errors import LLMProviderServiceError, is_transient

T = TypeVar("T")
_MAX_EXPONENT = 60  # 2**60 times any sane base is past every cap; avoids float overflow


def backoff_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    rng: random.Random,
    retry_after: float | None = None,
) -> float:
    """Seconds to wait before try number `attempt + 1` (`attempt` 0 is the first wait).

    Without `retry_after`: a uniform draw in [c/2, c) where c = min(cap, base * 2**attempt),
    so waits grow from about `base` to about `cap` and concurrent clients spread out. With
    `retry_after` (the server's Retry-After, seconds): never less than it, even above `cap`,
    because the server said when it can serve again. Raises `ValueError` for a negative
    `attempt`, a `base` that is not positive or a `cap` below `base`.
    """
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    if not (base > 0 and cap >= base and math.isfinite(cap)):
        raise ValueError(f"need 0 < base <= cap < inf, got base={base}, cap={cap}")
    ceiling = min(cap, base * 2.0 ** min(attempt, _MAX_EXPONENT))
    delay = ceiling * (0.5 + 0.5 * rng.random())
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """A Retry-After header in seconds: delta-seconds or an HTTP date (RFC 9110); None when
    absent or unreadable. A date in the past gives 0."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
        return max(0.0, seconds)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`retries` more tries after transient failures (`errors.is_transient`), waiting
    `backoff_delay(base, cap)` between them."""

    retries: int
    base: float
    cap: float
    rng: random.Random

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        return backoff_delay(
            attempt, base=self.base, cap=self.cap, rng=self.rng, retry_after=retry_after
        )

    async def run(self, call: Callable[[], Awaitable[T]], *, deadline_at: float | None) -> T:
        """`await call()`, again after each transient `LLMProviderServiceError`, at most
        `retries` more times. Raises the last error when the tries are used up, when the
        error is not transient, or when the next try could not start before `deadline_at`
        (the event loop's clock): waiting would only end in a missed deadline."""
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            try:
                return await call()
            except LLMProviderServiceError as error:
                if attempt >= self.retries or not is_transient(error):
                    raise
                delay = self.delay(attempt, error.retry_after)
                if deadline_at is not None and loop.time() + delay >= deadline_at:
                    raise
            await asyncio.sleep(delay)
            attempt += 1
