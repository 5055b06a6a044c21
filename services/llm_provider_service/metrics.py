"""Prometheus metrics of the service, all named `llm_provider_*` (and the standard
`process_*` and `python_info`), in a registry per app."""

from __future__ import annotations

import platform
from http import HTTPStatus

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from common_core.enums import CircuitBreakerState, DeliveryChannel, LLMProviderType, QueueStatus
from services.llm_provider_service.models import (
    POSITION_BIAS_MAX_MODELS,
    OutboxStats,
    QueueStats,
    StoreMemory,
)
from services.llm_provider_service.version import service_version

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_OVERHEAD_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1)
_WAIT_BUCKETS = (1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400)
# The `model` label of a model first seen after this many is "other": label values must come
# from a bounded set, and model names come from vendors' answers.
_OTHER_MODEL = "other"
# The request-derived labels of the HTTP metrics come from closed sets too: a client chooses
# the method (h11 accepts any token) and the path, and every new value would be a new series
# kept for the life of the process. The route is the URL rule that matched, else this.
UNMATCHED_ROUTE = "unmatched"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "OTHER"
_HTTP_STATUSES = frozenset(status.value for status in HTTPStatus)
OTHER_STATUS = "other"
_BREAKER_VALUE = {
    CircuitBreakerState.CLOSED: 0,
    CircuitBreakerState.HALF_OPEN: 1,
    CircuitBreakerState.OPEN: 2,
}


class ServiceMetrics:
    """Every metric the service exports. One instance per app, with its own registry, so
    several apps in one test process never collide."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # CPU, memory, open files and start time of this process (Linux /proc; absent
        # elsewhere), and `python_info`.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.build_info = Gauge(
            "llm_provider_build_info",
            "Always 1; the labels say which build runs: the package version and Python.",
            ["version", "python", "implementation"],
            registry=r,
        )
        self.build_info.labels(
            service_version(), platform.python_version(), platform.python_implementation()
        ).set(1)
        self.http_requests = Counter(
            "llm_provider_http_requests_total",
            "HTTP requests by route and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "llm_provider_http_request_duration_seconds",
            "HTTP request latency by route.",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.service_overhead = Histogram(
            "llm_provider_service_overhead_seconds",
            "Time the service itself adds to a request: latency minus the provider call.",
            ["route"],
            buckets=_OVERHEAD_BUCKETS,
            registry=r,
        )
        self.comparison_requests = Counter(
            "llm_provider_comparison_requests_total",
            "Comparison requests by processing mode and outcome (completed, queued, error).",
            ["mode", "outcome"],
            registry=r,
        )
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
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.breaker_state = Gauge(
            "llm_provider_circuit_breaker_state",
            "Circuit breaker state per provider: 0 closed, 1 half-open, 2 open.",
            ["provider"],
            registry=r,
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
        self.quota_refusals = Counter(
            "llm_provider_quota_refusals_total",
            "Requests refused with 429 QUOTA_EXCEEDED, by caller and by quota "
            "(requests_per_minute or max_queued).",
            ["caller", "quota"],
            registry=r,
        )
        self.cache_served = Counter(
            "llm_provider_cache_served_responses_total",
            "Responses served from the development cache; must stay 0 outside development.",
            registry=r,
        )
        self.queue_depth = Gauge(
            "llm_provider_queue_depth",
            "Queued requests per provider.",
            ["provider"],
            registry=r,
        )
        self.queue_depth_by_priority = Gauge(
            "llm_provider_queue_depth_by_priority",
            "Queued requests per priority.",
            ["priority"],
            registry=r,
        )
        self.queue_processing = Gauge(
            "llm_provider_queue_processing",
            "Requests currently leased to a worker.",
            registry=r,
        )
        self.queue_oldest_age = Gauge(
            "llm_provider_queue_oldest_age_seconds",
            "Age of the oldest queued request.",
            registry=r,
        )
        self.queue_wait = Histogram(
            "llm_provider_queue_wait_seconds",
            "Time from enqueue to the start of the attempt that completed the request.",
            ["provider"],
            buckets=_WAIT_BUCKETS,
            registry=r,
        )
        self.queue_transitions = Counter(
            "llm_provider_queue_transitions_total",
            "Queue status transitions, by the status entered.",
            ["status"],
            registry=r,
        )
        self.queue_lease_expiries = Counter(
            "llm_provider_queue_lease_expiries_total",
            "Leases that expired because their worker stopped heart-beating.",
            registry=r,
        )
        self.queue_retries = Counter(
            "llm_provider_queue_retries_total",
            "Failed attempts scheduled for another try.",
            ["provider"],
            registry=r,
        )
        self.events_published = Counter(
            "llm_provider_events_published_total",
            "Events by type and outcome: published, failed (a result is retried; an observability "
            "event is dropped), lost (a request-path result the outbox could not keep).",
            ["event_type", "outcome"],
            registry=r,
        )
        self.events_lost = Counter(
            "llm_provider_events_lost_total",
            "Events given up for good, by type and reason: rejected (the broker refused the "
            "record for good), unknown_topic (the topic stayed unknown), buffer_full and "
            "shutdown (observability events the background buffer dropped or still held).",
            ["event_type", "reason"],
            registry=r,
        )
        self.outbox_pending = Gauge(
            "llm_provider_outbox_pending",
            "Result deliveries waiting in the outbox, by channel (kafka, webhook).",
            ["channel"],
            registry=r,
        )
        self.outbox_unsaved = Gauge(
            "llm_provider_outbox_unsaved",
            "Request-path result deliveries this process holds because the outbox could not "
            "be written; the relay writes them once it can.",
            registry=r,
        )
        self.outbox_oldest_age = Gauge(
            "llm_provider_outbox_oldest_age_seconds",
            "Age of the oldest result delivery still waiting in the outbox.",
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "llm_provider_webhook_deliveries_total",
            "Webhook deliveries by outcome: delivered, retry and rejected per attempt; given_up "
            "once per delivery whose deadline passed.",
            ["outcome"],
            registry=r,
        )
        self.redis_memory_used_ratio = Gauge(
            "llm_provider_redis_memory_used_ratio",
            "Redis used_memory / maxmemory of the queue's Redis (0 without a maxmemory), read "
            "at /healthz and at scrape time; at 1 Redis refuses writes (QUEUE_MEMORY_FULL).",
            registry=r,
        )
        self.kafka_breaker_state = Gauge(
            "llm_provider_kafka_breaker_state",
            "The Kafka publisher's circuit breaker: 0 closed, 1 half-open, 2 open.",
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
        for channel in DeliveryChannel:
            self.outbox_pending.labels(channel.value).set(0)
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

    def record_http_request(
        self, method: str, route: str | None, status: int, seconds: float, overhead: float
    ) -> None:
        """Count one HTTP request. `route` is the URL rule that matched (None: none did);
        an unknown method is `OTHER` and a status outside `http.HTTPStatus` is `other`."""
        method_label = method if method in HTTP_METHODS else OTHER_METHOD
        route_label = route or UNMATCHED_ROUTE
        status_label = str(status) if status in _HTTP_STATUSES else OTHER_STATUS
        self.http_requests.labels(method_label, route_label, status_label).inc()
        self.http_latency.labels(method_label, route_label).observe(seconds)
        self.service_overhead.labels(route_label).observe(overhead)

    def set_breaker_state(self, provider: LLMProviderType, state: CircuitBreakerState) -> None:
        self.breaker_state.labels(provider.value).set(_BREAKER_VALUE[state])

    def record_transition(self, status: QueueStatus, count: int = 1) -> None:
        self.queue_transitions.labels(status.value).inc(count)

    def observe_queue(self, stats: QueueStats) -> None:
        for provider in LLMProviderType:
            self.queue_depth.labels(provider.value).set(stats.depth.get(provider, 0))
        self.queue_depth_by_priority.clear()
        for priority, depth in stats.depth_by_priority.items():
            self.queue_depth_by_priority.labels(str(priority)).set(depth)
        self.queue_processing.set(stats.processing)
        self.queue_oldest_age.set(max(0.0, stats.oldest_age_seconds or 0.0))

    def observe_outbox(self, stats: OutboxStats) -> None:
        for channel in DeliveryChannel:
            self.outbox_pending.labels(channel.value).set(stats.pending.get(channel, 0))
        self.outbox_oldest_age.set(max(0.0, stats.oldest_age_seconds or 0.0))

    def observe_store_memory(self, memory: StoreMemory) -> None:
        self.redis_memory_used_ratio.set(memory.used_ratio or 0.0)

    def set_kafka_breaker_state(self, state: CircuitBreakerState) -> None:
        self.kafka_breaker_state.set(_BREAKER_VALUE[state])
