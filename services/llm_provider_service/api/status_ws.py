"""`/api/v1/ws/status/<queue_id>`: pushes a queued request's status each time it changes."""

from __future__ import annotations

import asyncio
from uuid import UUID

from dishka import FromDishka
from quart import Blueprint, g, websocket
from quart_dishka import inject

from common_core.api_models import ErrorDetail, ErrorResponse
from common_core.enums import ErrorCode, QueueStatus
from services.llm_provider_service.api.auth import current_caller
from services.llm_provider_service.callers import may_see
from services.llm_provider_service.errors import QueueUnavailableError
from services.llm_provider_service.protocols import RequestQueue
from services.llm_provider_service.settings import Settings

bp = Blueprint("status_ws", __name__, url_prefix="/api/v1")


def _error(code: ErrorCode, message: str) -> str:
    """A message in the API's error shape, with the socket's correlation id (app.py)."""
    detail = ErrorDetail(code=code.value, message=message, correlation_id=g.get("correlation_id"))
    return ErrorResponse(error=detail).model_dump_json()


@bp.websocket("/ws/status/<queue_id>")
@inject
async def watch_status(
    queue_id: str, queue: FromDishka[RequestQueue], settings: FromDishka[Settings]
) -> None:
    """Sends the status body of `GET /api/v1/status/<queue_id>` now and after every change
    (status, attempts or position), and closes once the request has ended. An unknown or
    malformed id, or another caller's request, gets one error message in the API's error
    shape, then the socket closes."""
    try:
        qid = UUID(queue_id)
    except ValueError:
        await websocket.send(_error(ErrorCode.VALIDATION_ERROR, "queue_id must be a UUID"))
        return
    caller = current_caller()
    last: tuple[object, ...] | None = None
    while True:
        try:
            record = await queue.get(qid)
            queued = record is not None and record.status is QueueStatus.QUEUED
            position = await queue.position(qid) if queued else None
        except QueueUnavailableError as exc:
            await websocket.send(_error(ErrorCode.QUEUE_UNAVAILABLE, exc.message))
            return
        if record is None or not may_see(caller, record.job.caller):
            await websocket.send(_error(ErrorCode.NOT_FOUND, f"no request with queue_id {qid}"))
            return
        current = (record.status, record.attempts, position, record.updated_at)
        if current != last:
            await websocket.send(record.status_response(position).model_dump_json())
            last = current
        if record.status.is_terminal:
            return
        # Polling the queue keeps this correct with any number of replicas and workers.
        await asyncio.sleep(settings.queue.poll_interval_seconds)
