"""The queue floor's metrics: depths, leases, waits, transitions and retries, and the
memory of the queue's Redis."""

from __future__ import annotations

import warnings

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from common_core.enums import LLMProviderType, QueueStatus
from services.llm_provider_service.models import QueueStats, StoreMemory

_WAIT_BUCKETS = (1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400)


class QueueMetrics:
    """The metrics of the request queue and the store behind it."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
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
        self.redis_memory_used_ratio = Gauge(
            "llm_provider_redis_memory_used_ratio",
            "Redis used_memory / maxmemory of the queue's Redis (0 without a maxmemory), read "
            "at /healthz and at scrape time; at 1 Redis refuses writes (QUEUE_MEMORY_FULL).",
            registry=r,
        )

    def record_transition(self, status: QueueStatus, count: int = 1) -> None:
        self.queue_transitions.labels(status.value).inc(count)

    def observe_queue(self, stats: QueueStats) -> None:
        for provider in LLMProviderType:
            self.queue_depth.labels(provider.value).set(stats.depth.get(provider, 0))
        with warnings.catch_warnings():
            # With several serve processes prometheus-client warns that the series stay in
            # the metric files; they do, but this gauge is exported from this process's
            # memory alone (`processes.py`), which `clear` does empty.
            warnings.filterwarnings("ignore", "Clearing labels", UserWarning)
            self.queue_depth_by_priority.clear()
        for priority, depth in stats.depth_by_priority.items():
            self.queue_depth_by_priority.labels(str(priority)).set(depth)
        self.queue_processing.set(stats.processing)
        self.queue_oldest_age.set(max(0.0, stats.oldest_age_seconds or 0.0))

    def observe_store_memory(self, memory: StoreMemory) -> None:
        self.redis_memory_used_ratio.set(memory.used_ratio or 0.0)
