"""`result_of`: the one place a job's judgement becomes its `ComparisonResult`."""

from __future__ import annotations

from datetime import UTC, datetime

from common_core.api_models import ComparisonResult
from common_core.enums import PresentationOrder, ServedVia
from services.llm_provider_service.models import ComparisonJob, Judgement
from services.llm_provider_service.providers.pricing import PriceTable

# The fields a result takes, under the same names, from its job and from the judgement.
_FROM_JOB = ("request_id", "correlation_id", "provider", "trace_id")
_FROM_JUDGEMENT = (
    "winner",
    "justification",
    "confidence",
    "model",
    "token_usage",
    "provider_request_id",
)


def result_of(
    job: ComparisonJob,
    judgement: Judgement,
    elapsed: float,
    order: PresentationOrder,
    prices: PriceTable,
    served_via: ServedVia = ServedVia.REALTIME,
) -> ComparisonResult:
    """The result of `job`: `judgement` (in the caller's terms) after `elapsed` seconds,
    presented to the provider in `order`, served through the lane `served_via` and priced
    by `prices` at that lane's price; the caller's pass-through fields as the request sent
    them."""
    return ComparisonResult(
        **{name: getattr(job, name) for name in _FROM_JOB},
        **{name: getattr(judgement, name) for name in _FROM_JUDGEMENT},
        **dict(job.request.passed_through()),
        response_time_ms=round(elapsed * 1000),
        cost_estimate=prices.estimate(
            judgement.model, judgement.token_usage, lane=served_via, provider=job.provider
        ),
        served_from_cache=False,
        completed_at=datetime.now(UTC),
        presentation_order=order,
        served_via=served_via,
    )
