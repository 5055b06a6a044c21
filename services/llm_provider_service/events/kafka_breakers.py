"""The Kafka publisher's circuit breakers: one per topic, bounded, reported as the worst.

Each topic has its own breaker (`kafka:<topic>`), so a topic whose sends time out (its
leader gone, say) stops only its own events. The set is bounded: past
`MAX_TOPIC_BREAKERS` topics, the rest share one (`kafka:*`). The publisher's `state`, its
`health()` and the transitions it reports are those of the worst topic. Refusals
(`events/reasons.py`, `NOT_OUTAGES`) do not count toward a breaker.
"""

from __future__ import annotations

from datetime import UTC, datetime

from common_core.enums import CircuitBreakerState
from services.llm_provider_service.breaker import CircuitBreaker, TransitionListener
from services.llm_provider_service.errors import EventPublishError
from services.llm_provider_service.events.reasons import CIRCUIT_OPEN, NOT_OUTAGES

BREAKER_NAME = "kafka"
MAX_TOPIC_BREAKERS = 64
"""Topics with a breaker of their own; topics come from settings and the callback-topic
allow-list, so this is only a bound against a pattern that admits unbounded names."""
_OTHER_TOPICS = "*"  # not a valid topic name, so it names no real topic
_SEVERITY = {
    CircuitBreakerState.CLOSED: 0,
    CircuitBreakerState.HALF_OPEN: 1,
    CircuitBreakerState.OPEN: 2,
}


def _counts_as_outage(exc: Exception) -> bool:
    return isinstance(exc, EventPublishError) and exc.details.get("reason") not in NOT_OUTAGES


def _open_error(retry_after: float) -> Exception:
    return EventPublishError(
        "event not published: the Kafka circuit breaker is open",
        details={"reason": CIRCUIT_OPEN},
        retry_after=retry_after,
    )


class TopicBreakers:
    """The breakers of the topics published to, made on first use.

    `on_transition` hears ("kafka", old, new) whenever the worst state over the topics'
    breakers changes."""

    def __init__(
        self,
        *,
        failure_threshold: int,
        reset_timeout_seconds: float,
        on_transition: TransitionListener | None = None,
    ) -> None:
        self._failure_threshold = failure_threshold
        self._reset_timeout_seconds = reset_timeout_seconds
        self._on_transition = on_transition
        self._breakers: dict[str, CircuitBreaker] = {}
        self._transitioned: dict[str, CircuitBreakerState] = {}
        self._reported = CircuitBreakerState.CLOSED

    def breaker_for(self, topic: str) -> CircuitBreaker:
        """The breaker of `topic`, made on first use (the shared one past the bound)."""
        key = topic
        if key not in self._breakers and len(self._breakers) >= MAX_TOPIC_BREAKERS:
            key = _OTHER_TOPICS
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = CircuitBreaker(
                f"{BREAKER_NAME}:{key}",
                failure_threshold=self._failure_threshold,
                reset_timeout_seconds=self._reset_timeout_seconds,
                counts_as_failure=_counts_as_outage,
                open_error=_open_error,
                on_transition=self._topic_transition,
            )
            self._breakers[key] = breaker
        return breaker

    @property
    def worst(self) -> CircuitBreaker:
        """The breaker of the topic in the worst state (among equals, the one that failed
        last); before any publish, the shared one of other topics."""
        if not self._breakers:
            return self.breaker_for(_OTHER_TOPICS)
        return max(
            self._breakers.values(),
            key=lambda b: (
                _SEVERITY[b.state],
                b.last_failure_at or datetime.min.replace(tzinfo=UTC),
            ),
        )

    @property
    def state(self) -> CircuitBreakerState:
        """The worst state over the topics' breakers; CLOSED before any publish."""
        return max(
            (b.state for b in self._breakers.values()),
            key=_SEVERITY.__getitem__,
            default=CircuitBreakerState.CLOSED,
        )

    def retry_after_seconds(self) -> float:
        """Seconds until the last open topic breaker lets a probe through; 0.0 if none."""
        return max((b.retry_after_seconds() for b in self._breakers.values()), default=0.0)

    def not_closed(self) -> list[tuple[str, CircuitBreaker]]:
        """(topic, breaker) of each breaker open or probing, in the order they were made."""
        return [
            (name, b)
            for name, b in self._breakers.items()
            if b.state is not CircuitBreakerState.CLOSED
        ]

    def forget_idle(self, *, keep: CircuitBreaker) -> None:
        """The broker just acknowledged an event: drop the other topics' breakers whose open
        period is over and that no probe has tried since. Such a topic may simply be idle
        (a lifecycle topic after an outage), and would otherwise keep the publisher's state
        and health not closed forever; its next publish starts from a closed breaker."""
        idle = [
            key
            for key, b in self._breakers.items()
            if b is not keep and b.state is CircuitBreakerState.HALF_OPEN and b.allows_call()
        ]
        if not idle:
            return
        for key in idle:
            self._transitioned.pop(self._breakers.pop(key).name, None)
        self._report_worst()

    def _topic_transition(
        self, name: str, old: CircuitBreakerState, new: CircuitBreakerState
    ) -> None:
        self._transitioned[name] = new
        self._report_worst()

    def _report_worst(self) -> None:
        worst = max(
            self._transitioned.values(),
            key=_SEVERITY.__getitem__,
            default=CircuitBreakerState.CLOSED,
        )
        if worst is self._reported:
            return
        previous, self._reported = self._reported, worst
        if self._on_transition is not None:
            self._on_transition(BREAKER_NAME, previous, worst)
