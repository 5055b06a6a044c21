"""`RequestRateQuota`: refuses a caller's request beyond its `requests_per_minute`."""

from __future__ import annotations

from services.llm_provider_service.callers import Caller
from services.llm_provider_service.errors import QuotaExceededError
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.protocols import RateLimiter


class RequestRateQuota:
    """Each billed request (a comparison, a provider test) takes one of its caller's
    `requests_per_minute`; an anonymous request (open service) or a caller without that
    quota takes nothing."""

    def __init__(self, limiter: RateLimiter, metrics: ServiceMetrics) -> None:
        self._limiter = limiter
        self._metrics = metrics

    async def take(self, caller: Caller | None) -> None:
        """Raise `QuotaExceededError` (429, with `retry_after`) when `caller` has used its
        allowance; `QueueUnavailableError` when the shared store cannot be reached."""
        if caller is None or caller.policy.requests_per_minute is None:
            return
        limit = caller.policy.requests_per_minute
        wait = await self._limiter.acquire(caller.name, limit)
        if wait > 0:
            self._metrics.quota_refusals.labels(caller.name, "requests_per_minute").inc()
            raise QuotaExceededError(
                f"caller {caller.name} has used its {limit} requests per minute",
                details={"quota": "requests_per_minute", "limit": limit, "caller": caller.name},
                retry_after=wait,
            )
