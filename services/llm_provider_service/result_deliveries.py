"""What a request that ended owes its consumers: the `comparison_result` event, per channel.

The event's id is derived from the request id, so every path that builds the result event of
one request (the request path, a relay, a relay's successor after a crash) builds the same
`event_id`: consumers drop duplicates by it, and the outbox ignores a repeated delivery.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from common_core.api_models import ComparisonResult, ErrorInfo, TokenUsage
from common_core.consumer_errors import consumer_error_code
from common_core.enums import DeliveryChannel, ErrorCode, LLMProviderType, QueueStatus
from common_core.events import (
    ComparisonResultData,
    EventEnvelope,
    LLMProviderEvent,
    ResultErrorDetail,
    event_type_name,
    stated_cost,
    topic_name,
)
from services.llm_provider_service.models import (
    ComparisonJob,
    ComparisonPrompt,
    Delivery,
    QueueRecord,
)
from services.llm_provider_service.prompt import prompt_sha256, render_prompt
from services.llm_provider_service.providers.pricing import PriceTable

# Fixed forever: changing it would change every result's event_id.
_RESULT_EVENT_NAMESPACE = uuid.UUID("8f0c7a52-4c1e-4d35-9a0e-2b6f3f1c9d11")
RESULT_EVENT_TYPE = event_type_name(LLMProviderEvent.COMPARISON_RESULT)
_TRACE_ID = re.compile(r"(?!0{32})[0-9a-f]{32}")
_CANCELLED = ErrorInfo(
    code=ErrorCode.REQUEST_CANCELLED.value, message="the request was cancelled by its caller"
)


def result_event_id(request_id: uuid.UUID) -> uuid.UUID:
    """The one `event_id` of a request's result event."""
    return uuid.uuid5(_RESULT_EVENT_NAMESPACE, f"comparison_result:{request_id}")


class ResultDeliveries:
    """Builds the result event of an ended request and one `Delivery` per channel it goes to:
    Kafka (the caller's `callback_topic` or the default result topic) and, when the caller
    gave a `callback_url`, the webhook. `prices` (the built-in table by default) prices
    error events' spend; `default_models` names the model a failed request asked for when
    it named none (else "unknown")."""

    def __init__(
        self,
        *,
        topic_prefix: str,
        webhook_deadline_seconds: float,
        prices: PriceTable | None = None,
        default_models: Mapping[LLMProviderType, str] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._prefix = topic_prefix
        self._webhook_deadline = timedelta(seconds=webhook_deadline_seconds)
        self._prices = prices or PriceTable()
        self._default_models = default_models or {}
        self._now = now

    @property
    def default_topic(self) -> str:
        return topic_name(LLMProviderEvent.COMPARISON_RESULT, self._prefix)

    def for_record(self, record: QueueRecord) -> list[Delivery]:
        """The deliveries of a queued request that reached a terminal status."""
        if record.status is QueueStatus.COMPLETED and record.result is not None:
            return self.for_outcome(record.job, result=record.result)
        if record.status is QueueStatus.CANCELLED:
            return self.for_outcome(record.job, error=record.error or _CANCELLED)
        error = record.error or ErrorInfo(code=record.status.value.upper(), message="")
        return self.for_outcome(record.job, error=error)

    def for_outcome(
        self,
        job: ComparisonJob,
        *,
        result: ComparisonResult | None = None,
        error: ErrorInfo | None = None,
        prompt: ComparisonPrompt | None = None,
    ) -> list[Delivery]:
        """The deliveries of `job`'s result (exactly one of `result` and `error`); `prompt`
        is the job's rendered prompt when the caller has it already."""
        envelope = self.envelope(job, result=result, error=error, prompt=prompt)
        payload = envelope.model_dump_json()
        now = self._now()
        request = job.request
        targets: list[tuple[DeliveryChannel, str, datetime | None]] = [
            (DeliveryChannel.KAFKA, request.callback_topic or self.default_topic, None)
        ]
        if request.callback_url:
            deadline = now + self._webhook_deadline
            targets.append((DeliveryChannel.WEBHOOK, request.callback_url, deadline))
        return [
            Delivery(
                delivery_id=f"{envelope.event_id}:{channel.value}",
                request_id=job.request_id,
                channel=channel,
                destination=destination,
                event_id=envelope.event_id,
                event_type=envelope.event_type,
                key=str(job.correlation_id),
                payload=payload,
                created_at=now,
                deadline=deadline,
            )
            for channel, destination, deadline in targets
        ]

    def envelope(
        self,
        job: ComparisonJob,
        *,
        result: ComparisonResult | None = None,
        error: ErrorInfo | None = None,
        prompt: ComparisonPrompt | None = None,
    ) -> EventEnvelope[ComparisonResultData]:
        # What every result event of the job says of its request, a result's or an error's.
        about_request: dict[str, Any] = {
            "request_id": job.request_id,
            "correlation_id": job.correlation_id,
            "provider": job.provider,
            "requested_at": job.requested_at,
            "trace_id": job.trace_id,
            **job.request.event_fields(prompt_sha256(prompt or render_prompt(job.request))),
        }
        if result is not None:
            cost = self._prices.estimate(
                result.model, result.token_usage, lane=result.served_via, provider=result.provider
            )
            data = ComparisonResultData.from_result(result, cost_estimate=cost, **about_request)
        else:
            data = self._error_data(job, error, about_request)
        return EventEnvelope(
            event_id=result_event_id(job.request_id),
            event_type=RESULT_EVENT_TYPE,
            correlation_id=job.correlation_id,
            data=data,
            metadata=_trace_metadata(job),
        )

    def _error_data(
        self, job: ComparisonJob, error: ErrorInfo | None, about_request: dict[str, Any]
    ) -> ComparisonResultData:
        """The data of `job`'s error event: what the failed attempts spent."""
        now = self._now()
        model = self._asked_model(job, error)
        usage = (error and error.token_usage) or TokenUsage()
        return ComparisonResultData(
            error_detail=self._error_detail(job, error, now),
            model=model,
            response_time_ms=0,
            token_usage=usage,
            **stated_cost(self._prices.estimate(model, usage), usage),
            completed_at=now,
            **about_request,
        )

    def _asked_model(self, job: ComparisonJob, error: ErrorInfo | None) -> str:
        """The model of a failed request: the one the attempt reported, else the one asked
        for (the override, else the provider's default), else "unknown"."""
        if error is not None and error.model:
            return error.model
        return job.overrides.model_override or self._default_models.get(job.provider, "unknown")

    def _error_detail(
        self, job: ComparisonJob, error: ErrorInfo | None, now: datetime
    ) -> ResultErrorDetail:
        error = error or ErrorInfo(code=ErrorCode.INTERNAL_ERROR.value, message="")
        return ResultErrorDetail(
            code=error.code,
            message=error.message,
            details=error.details,
            model=error.model,
            token_usage=error.token_usage,
            error_code=consumer_error_code(error.code, error.details),
            correlation_id=job.correlation_id,
            timestamp=now,
        )


def _trace_metadata(job: ComparisonJob) -> dict[str, str]:
    """The W3C `traceparent` of the request's trace, as consumers read it from the envelope:
    the stored context of the span that queued or served the request when the job has one
    (`tracing.md`), else one whose span id is derived from the request id. Either way every
    copy of the event carries the same."""
    stored = job.trace_context or {}
    if _TRACE_ID.fullmatch(job.trace_id) and job.trace_id in stored.get("traceparent", ""):
        return {k: v for k, v in stored.items() if k in ("traceparent", "tracestate")}
    if not _TRACE_ID.fullmatch(job.trace_id):
        return {}
    span_id = uuid.uuid5(_RESULT_EVENT_NAMESPACE, f"span:{job.request_id}").hex[:16]
    return {"traceparent": f"00-{job.trace_id}-{span_id}-01"}
