"""`result_of`: the one place a job's judgement becomes its `ComparisonResult`."""

from __future__ import annotations

from datetime import UTC, datetime

from common_core.api_models import ComparisonResult
from common_core.enums import PresentationOrder
from services.llm_provider_service.job import ComparisonJob
from services.llm_provider_service.models import Judgement
from services.llm_provider_service.providers.pricing import PriceTable


def result_of(
    job: ComparisonJob,
    judgement: Judgement,
    elapsed: float,
    order: PresentationOrder,
    prices: PriceTable,
) -> ComparisonResult:
    """The result of `job`: `judgement` (in the caller's terms) after `elapsed` seconds,
    presented to the provider in `order`, priced by `prices`; the caller's pass-through
    fields as the request sent them."""
    return ComparisonResult(
        request_id=job.request_id,
        correlation_id=job.correlation_id,
        winner=judgement.winner,
        justification=judgement.justification,
        confidence=judgement.confidence,
        provider=job.provider,
        model=judgement.model,
        response_time_ms=round(elapsed * 1000),
        token_usage=judgement.token_usage,
        cost_estimate=prices.estimate(judgement.model, judgement.token_usage),
        trace_id=job.trace_id,
        served_from_cache=False,
        provider_request_id=judgement.provider_request_id,
        completed_at=datetime.now(UTC),
        presentation_order=order,
        **dict(job.request.passed_through()),
    )
