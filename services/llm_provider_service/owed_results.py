"""The result event a request answered on the request path owes, into the outbox."""

from __future__ import annotations

import logging

from common_core.api_models import ComparisonResult, ErrorInfo
from services.llm_provider_service.errors import QueueUnavailableError
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.models import ComparisonJob, ComparisonPrompt
from services.llm_provider_service.outbox.unsaved import UnsavedDeliveries
from services.llm_provider_service.protocols import ResultOutbox
from services.llm_provider_service.result_deliveries import ResultDeliveries

logger = logging.getLogger(__name__)


class OwedResults:
    """Puts the result event of a request answered on the request path in the outbox, or
    holds it in process while the outbox cannot be written. Queued requests never come
    here; the relay announces them from the queue."""

    def __init__(
        self,
        outbox: ResultOutbox,
        deliveries: ResultDeliveries,
        metrics: ServiceMetrics,
        unsaved: UnsavedDeliveries,
    ) -> None:
        self._outbox = outbox
        self._deliveries = deliveries
        self._metrics = metrics
        self._unsaved = unsaved

    async def owe(
        self,
        job: ComparisonJob,
        prompt: ComparisonPrompt,
        *,
        result: ComparisonResult | None = None,
        error: ErrorInfo | None = None,
    ) -> None:
        """The request ended here with `result` or `error`: when the caller asked for a
        result event (`callback_topic` or `callback_url`), it is owed. Never raises for the
        outbox: the caller has its answer either way."""
        request = job.request
        if not (request.callback_topic or request.callback_url):
            return
        deliveries = self._deliveries.for_outcome(job, result=result, error=error, prompt=prompt)
        try:
            for delivery in deliveries:
                await self._outbox.add(delivery)
        except QueueUnavailableError as exc:
            # Held in this process until the relay can write it (the outbox ignores the
            # deliveries already in); lost only if the hold is full or the process dies.
            if self._unsaved.keep(deliveries):
                logger.warning(
                    "result event of %s held in process until the outbox answers: %s",
                    job.request_id,
                    exc,
                )
                return
            # The caller has the result in this response; only its copy by event is lost.
            self._metrics.events_published.labels("comparison_result", "lost").inc()
            logger.error("result event of %s not kept: %s", job.request_id, exc)
