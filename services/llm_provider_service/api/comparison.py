"""`POST /api/v1/comparison`: a fresh judgement now (200), or a place in the queue (202)."""

from __future__ import annotations

import re

from dishka import FromDishka
from quart import Blueprint, Response, g, request
from quart_dishka import inject
from quart_schema import document_request, document_response

from common_core.api_models import (
    ComparisonRequest,
    ComparisonResult,
    QueuedResponse,
)
from services.llm_provider_service.api.auth import current_caller
from services.llm_provider_service.api.openapi import (
    BODY_ERRORS,
    IDEMPOTENCY_KEY,
    IDEMPOTENT_REPLAYED,
    LOCATION,
    RETRY_AFTER,
    TRACEPARENT,
    documented,
)
from services.llm_provider_service.api.parsing import parse_json_body
from services.llm_provider_service.api.responses import json_response
from services.llm_provider_service.errors import RequestValidationError
from services.llm_provider_service.idempotency.guard import IdempotencyGuard, Replayed
from services.llm_provider_service.orchestrator import Completed
from services.llm_provider_service.quotas.request_rate import RequestRateQuota

bp = Blueprint("comparison", __name__, url_prefix="/api/v1")


# version (not ff) - trace id (not all zero) - parent id (not all zero) - flags; lower-case hex.
_TRACEPARENT = re.compile(
    r"^(?!ff)[0-9a-f]{2}-(?!0{32})([0-9a-f]{32})-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}"
)


def _trace_id() -> str | None:
    """The trace id of a valid W3C `traceparent`, so our trace joins the caller's; an
    invalid header is ignored, as the W3C Trace Context spec asks."""
    match = _TRACEPARENT.match(request.headers.get("traceparent", ""))
    return match.group(1) if match else None


@bp.post("/comparison")
@document_request(ComparisonRequest)
@document_response(ComparisonResult, 200)
@document_response(QueuedResponse, 202)
@documented(
    "Judge which of two essays is better.",
    authenticated=True,
    errors=(*BODY_ERRORS, 403, 409, 422, 429, 502, 503, 504),
    headers=(IDEMPOTENCY_KEY, TRACEPARENT),
    response_headers={
        200: (IDEMPOTENT_REPLAYED,),
        202: (RETRY_AFTER, LOCATION, IDEMPOTENT_REPLAYED),
    },
)
@inject
async def create_comparison(
    guard: FromDishka[IdempotencyGuard], rate: FromDishka[RequestRateQuota]
) -> Response:
    """A fresh provider call judges which essay is better: 200 with the result. When the
    provider is down (breaker open, or a retryable failure) the request is queued instead:
    202 with its status URL (`processing_mode=queue_if_unavailable`, the default);
    `processing_mode=async` always queues, `immediate` never does (503 with `Retry-After`).
    A retry with the same `Idempotency-Key` gets the first answer, not a new call."""
    caller = current_caller()
    await rate.take(caller)
    body = await parse_json_body(ComparisonRequest)
    if body.correlation_id is not None:
        g.correlation_id = body.correlation_id
    outcome = await guard.submit(
        body,
        key=_idempotency_key(body),
        trace_id=_trace_id(),
        # The id already in every log line of this request becomes the request's own.
        correlation_id=g.correlation_id,
        caller=caller,
    )
    headers: dict[str, str] = {}
    if isinstance(outcome, Replayed):
        headers["Idempotent-Replayed"] = "true"
        outcome = outcome.outcome
    if isinstance(outcome, Completed):
        g.provider_seconds = outcome.provider_seconds
        g.correlation_id = outcome.result.correlation_id
        return json_response(outcome.result, 200, headers)
    queued = outcome.response
    g.correlation_id = queued.correlation_id
    headers |= {"Retry-After": str(outcome.retry_after), "Location": queued.status_url}
    return json_response(queued, 202, headers)


def _idempotency_key(body: ComparisonRequest) -> str | None:
    header = request.headers.get("Idempotency-Key")
    if header is not None and not 1 <= len(header) <= 255:
        raise RequestValidationError(
            "Idempotency-Key must be 1 to 255 characters", details={"field": "Idempotency-Key"}
        )
    if header and body.idempotency_key and header != body.idempotency_key:
        raise RequestValidationError(
            "the Idempotency-Key header and the idempotency_key field differ",
            details={"field": "idempotency_key"},
        )
    return header or body.idempotency_key
