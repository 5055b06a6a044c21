"""Circuit breakers: aiobreaker's counting, with a one-probe gate in half-open.

aiobreaker 1.2 keeps its state in memory per replica (its Redis storage blocks the event loop),
lets every concurrent call through while half-open, and compares naive UTC with local time in
`time_until_open`. So this wrapper keeps its own monotonic clock for the open period, admits
one probe at a time once that period is over, and reports state from those facts.

`CircuitBreaker` guards any dependency (the event broker uses one); `ProviderCircuitBreaker`
is the per-LLM-provider flavour.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import aiobreaker

from common_core.enums import CircuitBreakerState, LLMProviderType
from services.llm_provider_service.errors import CircuitOpenError, ProviderError

logger = logging.getLogger(__name__)

T = TypeVar("T")
TransitionListener = Callable[[str, CircuitBreakerState, CircuitBreakerState], None]
StateListener = Callable[[LLMProviderType, CircuitBreakerState, CircuitBreakerState], None]

_STATE_NAMES = {
    aiobreaker.CircuitBreakerState.CLOSED: CircuitBreakerState.CLOSED,
    aiobreaker.CircuitBreakerState.OPEN: CircuitBreakerState.OPEN,
    aiobreaker.CircuitBreakerState.HALF_OPEN: CircuitBreakerState.HALF_OPEN,
}


class _TransitionListener(aiobreaker.CircuitBreakerListener):  # type: ignore[misc]
    def __init__(self, owner: CircuitBreaker) -> None:
        self._owner = owner

    def state_change(self, breaker: Any, old: Any, new: Any) -> None:
        self._owner._on_transition(_STATE_NAMES[old.state], _STATE_NAMES[new.state])


class CircuitBreaker:
    """Guards one dependency. `call` runs the guarded call, or raises `open_error(retry_after)`.

    `counts_as_failure` decides which exceptions are outages; any other outcome, including
    other exceptions, counts as a success (the dependency answered).
    """

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int,
        reset_timeout_seconds: float,
        counts_as_failure: Callable[[Exception], bool],
        open_error: Callable[[float], Exception],
        on_transition: TransitionListener | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._counts_as_failure = counts_as_failure
        self._open_error = open_error
        self._reset_timeout = reset_timeout_seconds
        self._monotonic = monotonic
        self._opened_at: float | None = None
        self._probe_in_flight = False
        self._on_transition_cb = on_transition
        self.last_success_at: datetime | None = None
        self.last_failure_at: datetime | None = None
        self.last_error: str | None = None
        self._breaker = aiobreaker.CircuitBreaker(
            fail_max=failure_threshold,
            timeout_duration=timedelta(seconds=reset_timeout_seconds),
            exclude=[lambda exc: not counts_as_failure(exc)],
            listeners=[_TransitionListener(self)],
            name=name,
        )

    @property
    def state(self) -> CircuitBreakerState:
        """CLOSED, OPEN, or HALF_OPEN once the open period is over (a probe may go through)."""
        raw = _STATE_NAMES[self._breaker.current_state]
        if raw is CircuitBreakerState.OPEN and self.retry_after_seconds() == 0.0:
            return CircuitBreakerState.HALF_OPEN
        return raw

    def allows_call(self) -> bool:
        """Whether a call now would go through (closed, or a free probe slot)."""
        state = self.state
        if state is CircuitBreakerState.CLOSED:
            return True
        if state is CircuitBreakerState.HALF_OPEN:
            return not self._probe_in_flight
        return False

    def retry_after_seconds(self) -> float:
        """Seconds until the open period ends; 0.0 when not open."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self._reset_timeout - self._monotonic())

    async def call(self, func: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run `func(*args)` through the breaker.

        Raises `open_error` without calling when the breaker is open or a probe is already
        in flight; otherwise returns or re-raises exactly what `func` did.
        """
        state = self.state
        is_probe = state is not CircuitBreakerState.CLOSED
        if is_probe and (state is CircuitBreakerState.OPEN or self._probe_in_flight):
            raise self._open_error(self._probe_retry_after())
        if is_probe:
            self._probe_in_flight = True
            # aiobreaker's own clock check uses naive UTC; ours said the period is over, so
            # move it to half-open explicitly rather than depend on the two clocks agreeing.
            self._breaker.half_open()
        try:
            result: T = await self._breaker.call_async(func, *args)
        except aiobreaker.CircuitBreakerError as exc:
            # This call itself failed and tripped the breaker: report its own error.
            cause = exc.__cause__
            if isinstance(cause, Exception):
                self._record_failure(cause)
                raise cause from None
            raise self._open_error(self._probe_retry_after()) from exc
        except Exception as exc:
            self._record_failure(exc)
            raise
        finally:
            if is_probe:
                self._probe_in_flight = False
        self.last_success_at = datetime.now(UTC)
        return result

    def _probe_retry_after(self) -> float:
        return max(self.retry_after_seconds(), 1.0)

    def _record_failure(self, exc: Exception) -> None:
        if self._counts_as_failure(exc):
            self.last_failure_at = datetime.now(UTC)
            self.last_error = str(exc)

    def _on_transition(self, old: CircuitBreakerState, new: CircuitBreakerState) -> None:
        if new is CircuitBreakerState.OPEN:
            self._opened_at = self._monotonic()
        elif new is CircuitBreakerState.CLOSED:
            self._opened_at = None
        logger.warning("circuit breaker %s: %s -> %s", self.name, old.value, new.value)
        if self._on_transition_cb is not None:
            self._on_transition_cb(self.name, old, new)


def _counts_toward_breaker(exc: Exception) -> bool:
    """Only outages trip a breaker: a 401 or a malformed request is not the vendor being down."""
    return isinstance(exc, ProviderError) and exc.retryable


class ProviderCircuitBreaker(CircuitBreaker):
    """Guards one provider: retryable `ProviderError`s count, an open breaker raises
    `CircuitOpenError`."""

    def __init__(
        self,
        provider: LLMProviderType,
        *,
        failure_threshold: int,
        reset_timeout_seconds: float,
        on_transition: StateListener | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider

        def open_error(retry_after: float) -> Exception:
            return CircuitOpenError(provider, retry_after=retry_after)

        def notify(_name: str, old: CircuitBreakerState, new: CircuitBreakerState) -> None:
            if on_transition is not None:
                on_transition(provider, old, new)

        super().__init__(
            provider.value,
            failure_threshold=failure_threshold,
            reset_timeout_seconds=reset_timeout_seconds,
            counts_as_failure=_counts_toward_breaker,
            open_error=open_error,
            on_transition=notify,
            monotonic=monotonic,
        )

    def _record_failure(self, exc: Exception) -> None:
        super()._record_failure(exc)
        if isinstance(exc, ProviderError) and not exc.retryable:
            # A non-outage error still tells us the vendor answered.
            self.last_error = str(exc)


class CircuitBreakers:
    """One breaker per provider, for the life of the replica."""

    def __init__(self, breakers: dict[LLMProviderType, ProviderCircuitBreaker]) -> None:
        self._breakers = breakers

    def __getitem__(self, provider: LLMProviderType) -> ProviderCircuitBreaker:
        return self._breakers[provider]

    def __iter__(self) -> Iterator[ProviderCircuitBreaker]:
        return iter(self._breakers.values())
