"""The `RateLimiter` contract: one behaviour suite for every per-caller rate store.

A harness imports everything from here and defines two fixtures: `limiter`, a fresh
`RateLimiter`, and `advance(seconds)`, async, moving the limiter's clock forward without
waiting. Tests leave at least a tenth of a second of margin around every instant, so a
clock that also moves a few milliseconds for real (Redis TIME) passes too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from services.llm_provider_service.protocols import RateLimiter

Advance = Callable[[float], Awaitable[None]]


async def _taken(limiter: RateLimiter, caller: str, per_minute: int, times: int) -> list[float]:
    return [await limiter.acquire(caller, per_minute) for _ in range(times)]


async def test_a_whole_minute_of_requests_may_go_at_once(limiter: RateLimiter):
    waits = await _taken(limiter, "cj", 6, 6)

    assert waits == [0.0] * 6


async def test_past_the_allowance_a_request_waits_one_interval(limiter: RateLimiter):
    await _taken(limiter, "cj", 6, 6)

    wait = await limiter.acquire("cj", 6)

    assert wait == pytest.approx(10.0, abs=0.1)  # 60 s / 6 per minute


async def test_a_refused_request_takes_nothing(limiter: RateLimiter, advance: Advance):
    await _taken(limiter, "cj", 6, 6)
    refusals = await _taken(limiter, "cj", 6, 20)
    await advance(10.2)

    assert all(wait > 0 for wait in refusals)
    assert await limiter.acquire("cj", 6) == 0.0
    assert await limiter.acquire("cj", 6) > 0


async def test_the_allowance_refills_at_the_rate(limiter: RateLimiter, advance: Advance):
    # One request every 10 s: on real Redis the wall time the test itself takes also refills
    # the allowance, and on a loaded machine that reached 0.1 s of a 1 s interval.
    await _taken(limiter, "cj", 6, 6)
    await advance(35)

    waits = await _taken(limiter, "cj", 6, 4)

    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] == pytest.approx(5.0, abs=1.0)


async def test_an_idle_caller_gets_its_whole_allowance_back(limiter: RateLimiter, advance: Advance):
    await _taken(limiter, "cj", 6, 6)
    await advance(120)

    assert await _taken(limiter, "cj", 6, 6) == [0.0] * 6
    assert await limiter.acquire("cj", 6) > 0


async def test_callers_have_their_own_allowances(limiter: RateLimiter):
    await _taken(limiter, "cj", 2, 2)

    assert await limiter.acquire("cj", 2) > 0
    assert await limiter.acquire("feedback", 2) == 0.0
