"""The provider-call floor's metrics: calls and their latency, the breakers, tokens and
cost, the development cache, and the position-bias signal."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from common_core.enums import CircuitBreakerState, LLMProviderType
from services.llm_provider_service.metrics.http import LATENCY_BUCKETS
from services.llm_provider_service.models import POSITION_BIAS_MAX_MODELS

# The `model` label of a model first seen after this many is "other": label values must come
# from a bounded set, and model names come from vendors' answers.
_OTHER_MODEL = "other"
BREAKER_VALUE = {
    CircuitBreakerState.CLOSED: 0,
    CircuitBreakerState.HALF_OPEN: 1,
    CircuitBreakerState.OPEN: 2,
}


class ProviderCallMetrics:
    """The metrics of calls to the LLM providers and of the judgements they return."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.provider_calls = Counter(
            "llm_provider_provider_calls_total",
            "Calls to LLM providers by outcome (success or error code).",
            ["provider", "outcome"],
            registry=r,
        )
        self.provider_latency = Histogram(
            "llm_provider_provider_call_duration_seconds",
            "Latency of LLM provider calls.",
            ["provider"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.breaker_state = Gauge(
            "llm_provider_circuit_breaker_state",
            "Circuit breaker state per provider: 0 closed, 1 half-open, 2 open.",
            ["provider"],
            registry=r,
            # Each serve process has its own breakers: the worst state among the live ones
            # (an open breaker anywhere is what an operator must see; a sum means nothing).
            multiprocess_mode="livemax",
        )
        self.breaker_transitions = Counter(
            "llm_provider_circuit_breaker_transitions_total",
            "Circuit breaker state transitions.",
            ["provider", "from_state", "to_state"],
            registry=r,
        )
        self.tokens = Counter(
            "llm_provider_tokens_total",
            "Tokens used, by provider and kind (prompt, completion).",
            ["provider", "kind"],
            registry=r,
        )
        self.cost = Counter(
            "llm_provider_cost_usd_total",
            "Estimated cost in USD, by provider.",
            ["provider"],
            registry=r,
        )
        self.unpriced = Counter(
            "llm_provider_unpriced_calls_total",
            "Successful calls whose model has no price: their cost_estimate is null in the "
            "answer and 0.0 with cost_estimate_known false in the result event.",
            ["provider"],
            registry=r,
        )
        self.cache_served = Counter(
            "llm_provider_cache_served_responses_total",
            "Responses served from the development cache; must stay 0 outside development.",
            registry=r,
        )
        self.winner_position = Counter(
            "llm_provider_winner_position_total",
            "Fresh judgements of requests whose essay order the service randomized, by the "
            "presented position of the winner (first, second): the position-bias signal.",
            ["provider", "model", "position"],
            registry=r,
        )
        self.presentation_orders = Counter(
            "llm_provider_presentation_order_total",
            "Requests whose essay order the service randomized, by the order chosen (as_sent, "
            "swapped); about half each.",
            ["order"],
            registry=r,
        )
        self.position_bias_unrecorded = Counter(
            "llm_provider_position_bias_unrecorded_total",
            "Randomized judgements the position-bias report missed (its store was unreachable).",
            registry=r,
        )
        self._winner_models: set[tuple[str, str]] = set()
        for provider in LLMProviderType:
            self.breaker_state.labels(provider.value).set(0)
        self.cache_served.inc(0)

    def record_winner_position(
        self, provider: LLMProviderType, model: str, *, first_won: bool
    ) -> None:
        entry = (provider.value, model)
        if entry not in self._winner_models:
            if len(self._winner_models) >= POSITION_BIAS_MAX_MODELS:
                entry = (provider.value, _OTHER_MODEL)
            else:
                self._winner_models.add(entry)
        position = "first" if first_won else "second"
        self.winner_position.labels(*entry, position).inc()

    def set_breaker_state(self, provider: LLMProviderType, state: CircuitBreakerState) -> None:
        self.breaker_state.labels(provider.value).set(BREAKER_VALUE[state])
