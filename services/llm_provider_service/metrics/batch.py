"""The batch lane's metrics: provider batches, their items, and the money the lane saves."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_ITEM_BUCKETS = (1, 5, 10, 50, 100, 500, 1000, 5000, 10000, 50000)
_JOB_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400, 172800)


class BatchMetrics:
    """Recorded by the batch engine (`batch/engine.py`)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.batch_jobs = Counter(
            "llm_provider_batch_api_jobs_total",
            "Provider batches by what happened to them: submitted, refused, ambiguous, "
            "reconciled, ended, failed, expired, cancelled.",
            ["provider", "model", "status"],
            registry=r,
        )
        self.batch_items_per_job = Histogram(
            "llm_provider_batch_api_items_per_job",
            "Entries per provider batch submitted.",
            ["provider", "model"],
            buckets=_ITEM_BUCKETS,
            registry=r,
        )
        self.batch_job_duration = Histogram(
            "llm_provider_batch_api_job_duration_seconds",
            "From the create call to the batch's terminal state.",
            ["provider", "model"],
            buckets=_JOB_BUCKETS,
            registry=r,
        )
        self.batch_items = Counter(
            "llm_provider_batch_items_total",
            "Batch entries by outcome: succeeded, failed, retried, not_run, missing, "
            "late_dropped, duplicate.",
            ["provider", "model", "outcome"],
            registry=r,
        )
        self.batch_savings = Counter(
            "llm_provider_batch_savings_dollars",
            "USD saved by the batch and flex lanes: the realtime price minus the lane's "
            "price for the same usage.",
            ["provider", "model"],
            registry=r,
        )
        self.batch_open_jobs = Gauge(
            "llm_provider_batch_open_jobs",
            "Provider batches this replica holds open (submitting or submitted).",
            ["provider"],
            registry=r,
        )
