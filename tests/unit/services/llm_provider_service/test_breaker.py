"""The circuit breaker: opens after the threshold, one probe in half-open, closes again."""

from __future__ import annotations

import asyncio

import pytest

from common_core.enums import CircuitBreakerState, LLMProviderType
from services.llm_provider_service.breaker import CircuitBreaker, ProviderCircuitBreaker
from services.llm_provider_service.errors import (
    CircuitOpenError,
    ProviderAuthError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)

MOCK = LLMProviderType.MOCK


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def outage() -> ProviderUnavailableError:
    return ProviderUnavailableError(MOCK, "503 from upstream", reason="server_error", status=503)


async def fail_with(exc: Exception) -> None:
    raise exc


async def ok() -> str:
    return "ok"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def transitions() -> list[tuple[CircuitBreakerState, CircuitBreakerState]]:
    return []


@pytest.fixture
def breaker(clock: Clock, transitions: list[tuple[object, object]]) -> ProviderCircuitBreaker:
    return ProviderCircuitBreaker(
        MOCK,
        failure_threshold=3,
        reset_timeout_seconds=30.0,
        monotonic=clock,
        on_transition=lambda _p, old, new: transitions.append((old, new)),
    )


async def trip(breaker: ProviderCircuitBreaker) -> None:
    for _ in range(3):
        with pytest.raises(ProviderUnavailableError):
            await breaker.call(fail_with, outage())


async def test_opens_after_threshold_and_reports_the_vendor_error(breaker, transitions):
    for _ in range(2):
        with pytest.raises(ProviderUnavailableError):
            await breaker.call(fail_with, outage())
    assert breaker.state is CircuitBreakerState.CLOSED
    # The call that trips the breaker still reports what the vendor said, not "open".
    with pytest.raises(ProviderUnavailableError) as info:
        await breaker.call(fail_with, outage())
    assert not isinstance(info.value, CircuitOpenError)
    assert breaker.state is CircuitBreakerState.OPEN
    assert transitions == [(CircuitBreakerState.CLOSED, CircuitBreakerState.OPEN)]
    assert breaker.last_failure_at is not None


async def test_open_breaker_refuses_without_calling(breaker, clock):
    await trip(breaker)
    called = []

    async def record() -> None:
        called.append(True)

    with pytest.raises(CircuitOpenError) as info:
        await breaker.call(record)
    assert called == []
    assert not breaker.allows_call()
    assert info.value.retry_after == pytest.approx(30.0)
    clock.now += 10
    assert breaker.retry_after_seconds() == pytest.approx(20.0)


async def test_non_outage_errors_never_trip(breaker):
    for _ in range(10):
        with pytest.raises(ProviderAuthError):
            await breaker.call(fail_with, ProviderAuthError(MOCK, "bad key", status=401))
    assert breaker.state is CircuitBreakerState.CLOSED


async def test_timeouts_count_as_outage(breaker):
    for _ in range(3):
        with pytest.raises(ProviderTimeoutError):
            await breaker.call(fail_with, ProviderTimeoutError(MOCK, "slow"))
    assert breaker.state is CircuitBreakerState.OPEN


async def test_half_open_admits_exactly_one_probe(breaker, clock):
    await trip(breaker)
    clock.now += 31
    assert breaker.state is CircuitBreakerState.HALF_OPEN
    assert breaker.allows_call()
    gate = asyncio.Event()
    calls = 0

    async def slow_probe() -> str:
        nonlocal calls
        calls += 1
        await gate.wait()
        return "recovered"

    probe = asyncio.create_task(breaker.call(slow_probe))
    await asyncio.sleep(0)
    assert not breaker.allows_call()
    others = await asyncio.gather(
        *(breaker.call(slow_probe) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(o, CircuitOpenError) for o in others)
    gate.set()
    assert await probe == "recovered"
    assert calls == 1
    assert breaker.state is CircuitBreakerState.CLOSED
    assert breaker.allows_call()


async def test_failed_probe_reopens_for_a_full_period(breaker, clock, transitions):
    await trip(breaker)
    clock.now += 31
    with pytest.raises(ProviderUnavailableError):
        await breaker.call(fail_with, outage())
    assert breaker.state is CircuitBreakerState.OPEN
    assert breaker.retry_after_seconds() == pytest.approx(30.0)
    assert transitions[-2:] == [
        (CircuitBreakerState.OPEN, CircuitBreakerState.HALF_OPEN),
        (CircuitBreakerState.HALF_OPEN, CircuitBreakerState.OPEN),
    ]


async def test_closes_after_successful_probe_and_counts_from_zero(breaker, clock):
    await trip(breaker)
    clock.now += 31
    assert await breaker.call(ok) == "ok"
    assert breaker.state is CircuitBreakerState.CLOSED
    # Two failures after recovery are below the threshold again.
    for _ in range(2):
        with pytest.raises(ProviderUnavailableError):
            await breaker.call(fail_with, outage())
    assert breaker.state is CircuitBreakerState.CLOSED
    assert breaker.last_success_at is not None


class OutageError(Exception):
    pass


class RefusedError(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"refused, retry after {retry_after}")
        self.retry_after = retry_after


async def test_generic_breaker_uses_its_own_failure_rule_error_and_name(clock):
    seen: list[tuple[str, CircuitBreakerState, CircuitBreakerState]] = []
    breaker = CircuitBreaker(
        "kafka",
        failure_threshold=2,
        reset_timeout_seconds=5.0,
        counts_as_failure=lambda exc: isinstance(exc, OutageError),
        open_error=RefusedError,
        on_transition=lambda name, old, new: seen.append((name, old, new)),
        monotonic=clock,
    )
    for _ in range(3):  # not an outage by its rule: never trips
        with pytest.raises(ValueError, match="bad"):
            await breaker.call(fail_with, ValueError("bad"))
    for _ in range(2):
        with pytest.raises(OutageError):
            await breaker.call(fail_with, OutageError("down"))
    assert breaker.state is CircuitBreakerState.OPEN
    assert breaker.last_error == "down"

    with pytest.raises(RefusedError) as info:
        await breaker.call(ok)
    assert info.value.retry_after == pytest.approx(5.0)

    clock.now += 6
    assert await breaker.call(ok) == "ok"
    assert seen == [
        ("kafka", CircuitBreakerState.CLOSED, CircuitBreakerState.OPEN),
        ("kafka", CircuitBreakerState.OPEN, CircuitBreakerState.HALF_OPEN),
        ("kafka", CircuitBreakerState.HALF_OPEN, CircuitBreakerState.CLOSED),
    ]
