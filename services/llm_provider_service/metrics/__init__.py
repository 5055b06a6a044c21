"""Prometheus metrics of the service, all named `llm_provider_*` (and the standard
`process_*` and `python_info`), in a registry per app.

`ServiceMetrics` is one object; its metrics are grouped by the floor that records them:
`http.py`, `provider_calls.py`, `queue.py`, `delivery.py` and `batch.py`. With several serve
processes, `processes.py` merges every process's metrics into each scrape.
"""

from __future__ import annotations

import platform

from prometheus_client import (
    CollectorRegistry,
    Gauge,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from services.llm_provider_service.metrics.batch import BatchMetrics
from services.llm_provider_service.metrics.delivery import DeliveryMetrics
from services.llm_provider_service.metrics.http import HttpMetrics
from services.llm_provider_service.metrics.processes import (
    ProcessesCollector,
    in_multiprocess_mode,
)
from services.llm_provider_service.metrics.provider_calls import ProviderCallMetrics
from services.llm_provider_service.metrics.queue import QueueMetrics
from services.llm_provider_service.version import service_version


class ServiceMetrics(HttpMetrics, ProviderCallMetrics, QueueMetrics, DeliveryMetrics, BatchMetrics):
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
        HttpMetrics.__init__(self, r)
        ProviderCallMetrics.__init__(self, r)
        QueueMetrics.__init__(self, r)
        DeliveryMetrics.__init__(self, r)
        BatchMetrics.__init__(self, r)
        self._exposed = r
        if in_multiprocess_mode():
            self._exposed = CollectorRegistry()
            self._exposed.register(ProcessesCollector(r, self._read_at_scrape_time()))

    def exposition(self) -> bytes:
        """The Prometheus text of this process's registry; with several serve processes, of
        every process's counters, histograms and per-process gauges merged (blocking: it
        reads the metric files)."""
        return generate_latest(self._exposed)

    def _read_at_scrape_time(self) -> frozenset[str]:
        """The gauges that `/metrics` sets from the shared store just before it answers, and
        the build: the answering process's own values are the service's."""
        gauges = (
            self.build_info,
            self.queue_depth,
            self.queue_depth_by_priority,
            self.queue_processing,
            self.queue_oldest_age,
            self.redis_memory_used_ratio,
            self.outbox_pending,
            self.outbox_oldest_age,
        )
        return frozenset(family.name for gauge in gauges for family in gauge.describe())
