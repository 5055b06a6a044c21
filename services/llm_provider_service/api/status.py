"""`GET` and `DELETE /api/v1/status/<queue_id>`: where a queued request stands, or cancel it."""

from __future__ import annotations

from uuid import UUID

from dishka import FromDishka
from quart import Blueprint, Response
from quart_dishka import inject
from quart_schema import document_response

from common_core.api_models import QueueStatusResponse
from common_core.enums import QueueStatus
from services.llm_provider_service.api.auth import current_caller
from services.llm_provider_service.api.openapi import documented
from services.llm_provider_service.api.responses import json_response
from services.llm_provider_service.callers import may_see
from services.llm_provider_service.errors import NotFoundError, RequestValidationError
from services.llm_provider_service.models import QueueRecord
from services.llm_provider_service.protocols import RequestQueue, ResultOutbox

bp = Blueprint("status", __name__, url_prefix="/api/v1")


def _parse_id(queue_id: str) -> UUID:
    try:
        return UUID(queue_id)
    except ValueError:
        raise RequestValidationError(
            "queue_id must be a UUID", details={"field": "queue_id"}
        ) from None


async def _own_record(queue: RequestQueue, qid: UUID) -> QueueRecord:
    """The request's record, if the caller may see it; another caller's request is as
    unknown as one that never existed (404), so its id says nothing."""
    record = await queue.get(qid)
    if record is None or not may_see(current_caller(), record.job.caller):
        raise NotFoundError(f"no request with queue_id {qid}", details={"queue_id": str(qid)})
    return record


async def _body(record: QueueRecord, position: int | None, outbox: ResultOutbox) -> Response:
    deliveries = await outbox.for_request(record.queue_id) if record.status.is_terminal else []
    return json_response(record.status_response(position, deliveries))


@bp.get("/status/<queue_id>")
@document_response(QueueStatusResponse, 200)
@documented(
    "Where a queued request stands, and its result once completed.",
    authenticated=True,
    errors=(400, 404, 503),
)
@inject
async def get_status(
    queue_id: str, queue: FromDishka[RequestQueue], outbox: FromDishka[ResultOutbox]
) -> Response:
    """The queued request's status; its result once completed, its error once failed, and
    once ended, where each delivery of its result event stands (Kafka, webhook)."""
    qid = _parse_id(queue_id)
    record = await _own_record(queue, qid)
    position = await queue.position(qid) if record.status is QueueStatus.QUEUED else None
    return await _body(record, position, outbox)


@bp.delete("/status/<queue_id>")
@document_response(QueueStatusResponse, 200)
@documented(
    "Cancel a request that is still queued.", authenticated=True, errors=(400, 404, 409, 503)
)
@inject
async def cancel_request(
    queue_id: str, queue: FromDishka[RequestQueue], outbox: FromDishka[ResultOutbox]
) -> Response:
    """Cancel a request that is still queued; 409 once processing has begun."""
    qid = _parse_id(queue_id)
    await _own_record(queue, qid)
    record = await queue.cancel(qid)
    return await _body(record, None, outbox)
