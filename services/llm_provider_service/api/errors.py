"""The one place errors become HTTP responses, all in the shape `{"error": {...}}`.

A `ServiceError` (`errors.py`) answers with its own `code` and `http_status`. Quart's own
refusals get a code too: `VALIDATION_ERROR` 400, `NOT_FOUND` 404, `METHOD_NOT_ALLOWED` 405
(with `Allow`), `REQUEST_TIMEOUT` 408 (the body did not arrive in time), `PAYLOAD_TOO_LARGE`
413, any other 4xx `BAD_REQUEST`. The answers Hypercorn makes itself, without the app, are
shaped by `server_errors.py`: `BAD_REQUEST` 400 (not parseable, or an invalid WebSocket
handshake), `HEADERS_TOO_LARGE` 431, `NOT_IMPLEMENTED` 501.
"""

from __future__ import annotations

import logging
import math
from typing import Any
from uuid import UUID

from quart import Quart, Response, g
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from common_core.api_models import ErrorDetail, ErrorResponse
from common_core.enums import ErrorCode
from services.llm_provider_service.api.responses import json_response
from services.llm_provider_service.errors import ServiceError

logger = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER_SECONDS = 5.0

# The codes of Quart's and Werkzeug's own refusals; any other 4xx is BAD_REQUEST, any 5xx
# INTERNAL_ERROR.
_HTTP_CODES = {
    400: ErrorCode.VALIDATION_ERROR,
    401: ErrorCode.UNAUTHORIZED,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    408: ErrorCode.REQUEST_TIMEOUT,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    431: ErrorCode.HEADERS_TOO_LARGE,
    501: ErrorCode.NOT_IMPLEMENTED,
}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    details: dict[str, Any] | None = None,
    retry_after: float | None = None,
) -> Response:
    correlation_id: UUID | None = g.get("correlation_id")
    body = ErrorResponse(
        error=ErrorDetail(
            code=code, message=message, correlation_id=correlation_id, details=details or {}
        )
    )
    headers: dict[str, str] = {}
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return json_response(body, status, headers)


def register_error_handlers(app: Quart) -> None:
    @app.errorhandler(ServiceError)
    async def _service_error(exc: ServiceError) -> Response:
        retry_after = exc.retry_after
        if retry_after is None and exc.http_status == 503:
            retry_after = DEFAULT_RETRY_AFTER_SECONDS  # every 503 says when to try again
        if exc.http_status >= 500:
            # The cause (a Redis or Kafka error naming internal hosts) goes to the log only.
            logger.warning(
                "request %s failed: %s %s (cause: %r)",
                g.get("correlation_id"),
                exc.code.value,
                exc.message,
                exc.__cause__,
            )
        response = error_response(
            exc.http_status,
            exc.code.value,
            exc.message,
            details=exc.details,
            retry_after=retry_after,
        )
        if exc.http_status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="llm_provider_service"'
        return response

    @app.errorhandler(HTTPException)
    async def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        fallback = ErrorCode.BAD_REQUEST if 400 <= status < 500 else ErrorCode.INTERNAL_ERROR
        code = _HTTP_CODES.get(status, fallback)
        message = exc.description or exc.name
        if status == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            message = f"request body is larger than the limit of {limit} bytes"
        elif status == 408:
            message = "the request body did not arrive in time"
        response = error_response(status, code.value, message)
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            response.headers["Allow"] = ", ".join(sorted(exc.valid_methods))
        return response

    @app.errorhandler(Exception)
    async def _unexpected(exc: Exception) -> Response:
        logger.exception("unexpected error in request %s", g.get("correlation_id"))
        return error_response(
            500, ErrorCode.INTERNAL_ERROR.value, "internal error; it has been logged"
        )
