"""Prometheus metrics of the service, all named `llm_provider_*` (and the standard
`process_*` and `python_info`), in a registry per app.

`ServiceMetrics` is one object; its metrics are grouped by the floor that records them:
`http.py`, `provider_calls.py`, `queue.py` and `delivery.py`.
"""

from __future__ import annotations

import platform

from prometheus_client import CollectorRegistry, Gauge, PlatformCollector, ProcessCollector

from services.llm_provider_service.metrics.delivery import DeliveryMetrics
from services.llm_provider_service.metrics.http import HttpMetrics
from services.llm_provider_service.metrics.provider_calls import ProviderCallMetrics
from services.llm_provider_service.metrics.queue import QueueMetrics
from services.llm_provider_service.version import service_version


class ServiceMetrics(HttpMetrics, ProviderCallMetrics, QueueMetrics, DeliveryMetrics):
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
