"""Waiting for a queued request's result: the status WebSocket first, status polling when the
WebSocket cannot be used (refused, rejected, dropped) or is turned off."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from uuid import UUID

from pydantic import ValidationError
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import WebSocketException

from common_core.api_models import ComparisonResult, QueuedResponse, QueueStatusResponse
from common_core.client._http import STATUS_PATH, ServiceHttp, expect, retry_after_of
from common_core.client.backoff import RetryPolicy
from common_core.client.errors import (
    UNEXPECTED_RESPONSE_CODE,
    ComparisonFailedError,
    LLMProviderServiceError,
    default_failure_code,
)
from common_core.enums import QueueStatus

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Queued:
    """A 202: the queued response, its Retry-After (seconds or None) and when it arrived
    (the event loop's clock)."""

    response: QueuedResponse
    retry_after: float | None
    received_at: float


def outcome(status: QueueStatusResponse) -> ComparisonResult:
    """The result of an ended request; raises `ComparisonFailedError` for failed, expired
    and cancelled ones."""
    if status.status is QueueStatus.COMPLETED:
        if status.result is None:
            raise LLMProviderServiceError(
                f"request {status.queue_id} is completed but its status has no result",
                code=UNEXPECTED_RESPONSE_CODE,
            )
        return status.result
    code = status.error.code if status.error else default_failure_code(status.status)
    message = status.error.message if status.error else ""
    raise ComparisonFailedError(
        message or f"request {status.queue_id} ended {status.status.value}",
        code=code,
        queue_id=status.queue_id,
        final_status=status.status,
        correlation_id=status.correlation_id,
    )


class ResultWaiter:
    """Awaits the end of queued requests of one service."""

    def __init__(self, http: ServiceHttp, policy: RetryPolicy, *, use_websocket: bool) -> None:
        self._http = http
        self._policy = policy
        self._use_websocket = use_websocket

    async def wait(self, queued: Queued) -> ComparisonResult:
        """The request's result once it ends (see `outcome`). Has no deadline of its own:
        the caller bounds it; the queue's TTL ends every request eventually."""
        queue_id = queued.response.queue_id
        if self._use_websocket:
            status = await self._watch(queue_id)
            if status is not None:
                return outcome(status)
        return outcome(await self._poll(queued))

    async def status(self, queue_id: UUID) -> QueueStatusResponse:
        """GET the status once, again after transient failures (see `RetryPolicy`)."""
        status, _ = await self._policy.run(lambda: self._get(queue_id), deadline_at=None)
        return status

    async def _get(self, queue_id: UUID) -> tuple[QueueStatusResponse, float | None]:
        response = await self._http.send("GET", STATUS_PATH.format(queue_id=queue_id))
        return expect(QueueStatusResponse, response), retry_after_of(response)

    async def _watch(self, queue_id: UUID) -> QueueStatusResponse | None:
        """The terminal status as the WebSocket pushes it; None when the socket cannot be
        opened, sends something else (an error message), or closes before the end."""
        url = self._http.ws_url(queue_id)
        try:
            async with ws_connect(
                url,
                additional_headers=self._http.auth_headers,
                open_timeout=self._http.timeout,
                close_timeout=self._http.timeout,
            ) as socket:
                async for message in socket:
                    status = _status_message(message)
                    if status is None:
                        logger.info(
                            "status WebSocket for %s sent %.200r; polling", queue_id, message
                        )
                        return None
                    if status.status.is_terminal:
                        return status
        except (OSError, TimeoutError, WebSocketException) as exc:
            logger.info("status WebSocket for %s unusable (%r); polling", queue_id, exc)
            return None
        logger.info("status WebSocket for %s closed before the request ended; polling", queue_id)
        return None

    async def _poll(self, queued: Queued) -> QueueStatusResponse:
        """GET the status until it is terminal: the first GET not before the 202's
        Retry-After, then each wait the status answer's Retry-After or the backoff."""
        loop = asyncio.get_running_loop()
        queue_id = queued.response.queue_id
        first_due = queued.received_at + self._policy.delay(0, queued.retry_after)
        await asyncio.sleep(max(0.0, first_due - loop.time()))
        attempt = 0
        while True:
            status, retry_after = await self._policy.run(
                lambda: self._get(queue_id), deadline_at=None
            )
            if status.status.is_terminal:
                return status
            attempt += 1
            await asyncio.sleep(self._policy.delay(attempt, retry_after))


def _status_message(message: str | bytes) -> QueueStatusResponse | None:
    try:
        payload = json.loads(message)
    except ValueError:
        return None
    try:  # an error message (the API's error shape) is not a status: None
        return QueueStatusResponse.model_validate(payload)
    except ValidationError:
        return None
