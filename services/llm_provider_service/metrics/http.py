"""The HTTP floor's metrics: requests by route and status, latency, the service's own
overhead, comparison outcomes and quota refusals."""

from __future__ import annotations

from http import HTTPStatus

from prometheus_client import CollectorRegistry, Counter, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_OVERHEAD_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1)
# The request-derived labels of the HTTP metrics come from closed sets: a client chooses the
# method (h11 accepts any token) and the path, and every new value would be a new series
# kept for the life of the process. The route is the URL rule that matched, else this.
UNMATCHED_ROUTE = "unmatched"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "OTHER"
_HTTP_STATUSES = frozenset(status.value for status in HTTPStatus)
OTHER_STATUS = "other"


class HttpMetrics:
    """The metrics of requests as the HTTP layer sees them."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
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
            buckets=LATENCY_BUCKETS,
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
        self.quota_refusals = Counter(
            "llm_provider_quota_refusals_total",
            "Requests refused with 429 QUOTA_EXCEEDED, by caller and by quota "
            "(requests_per_minute or max_queued).",
            ["caller", "quota"],
            registry=r,
        )

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
