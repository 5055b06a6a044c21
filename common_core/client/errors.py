"""The client's typed exceptions: one root, a subclass per kind of failure, one table from
the service's stable error codes to those subclasses.

    LLMProviderServiceError          code, message, status, details, correlation_id, retry_after
    ├── RequestRejectedError         4xx: the request cannot be served as sent; do not resend it
    │   ├── AuthenticationError      401 UNAUTHORIZED
    │   ├── ForbiddenError           403 FORBIDDEN
    │   └── IdempotencyKeyReusedError  409 IDEMPOTENCY_KEY_REUSED: same key, another body
    ├── ProviderFailedError          502: the provider failed in a way a retry will not mend
    ├── ServiceUnavailableError      429, 503, 504: not now; try again later
    ├── ComparisonFailedError        a queued request ended failed, expired or cancelled
    ├── DeadlineExceededError        the caller's deadline passed; the request is not cancelled
    └── TransportError               no HTTP answer at all (connection failed, timed out)

`error_from_response` turns any HTTP answer that is neither 200 nor 202 into one of these:
by `ERROR_CLASSES[code]` when the body has the service's error shape and a known code, else
by the HTTP status (`class_for_status`). A body that is not the error shape (a proxy's HTML
502) gets the code `UNKNOWN`. The root class itself is raised for 500 `INTERNAL_ERROR`, for
unknown codes with an unexpected status, and (code `UNEXPECTED_RESPONSE`) for a 200 or 202
whose body is not what the API promises.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from common_core.api_models import ErrorResponse
from common_core.enums import ErrorCode, QueueStatus

UNKNOWN_CODE = "UNKNOWN"
"""The code of an answer whose body is not the service's error shape."""
UNEXPECTED_RESPONSE_CODE = "UNEXPECTED_RESPONSE"
"""The code of a success answer whose body does not match the API's model."""
CORRELATION_HEADER = "X-Correlation-ID"
TRANSPORT_TIMEOUT = "TIMEOUT"
"""No answer within the client's timeout."""
TRANSPORT_CONNECTION = "CONNECTION_ERROR"
"""The connection could not be made, or broke before the answer."""
TRANSPORT_PROTOCOL = "PROTOCOL_ERROR"
"""Anything else that kept the request from being sent (a bad URL, a proxy); not retried."""
_BODY_EXCERPT_CHARS = 200


class LLMProviderServiceError(Exception):
    """Root of every error the client raises.

    `code` is the service's stable error code (see `common_core.enums.ErrorCode`) or one of
    the client's own (`UNKNOWN`, `UNEXPECTED_RESPONSE`, `TIMEOUT`, `CONNECTION_ERROR`,
    `PROTOCOL_ERROR`, `DEADLINE_EXCEEDED`); `status` is the HTTP status, None when there was
    no HTTP answer; `retry_after` is the answer's Retry-After in seconds, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = UNKNOWN_CODE,
        status: int | None = None,
        details: Mapping[str, Any] | None = None,
        correlation_id: UUID | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.details: dict[str, Any] = dict(details or {})
        self.correlation_id = correlation_id
        self.retry_after = retry_after

    def __str__(self) -> str:
        where = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{self.code}{where}: {self.message}"


class RequestRejectedError(LLMProviderServiceError):
    """The service refused the request as sent (4xx); sending it again will not help."""


class AuthenticationError(RequestRejectedError):
    """401: the API key is missing or not accepted."""


class ForbiddenError(RequestRejectedError):
    """403: the API key is valid but may not do this."""


class IdempotencyKeyReusedError(RequestRejectedError):
    """409 IDEMPOTENCY_KEY_REUSED: the key was used before with a different request body."""


class ProviderFailedError(LLMProviderServiceError):
    """502: the provider refused or garbled the call (auth, bad request, invalid answer)."""


class ServiceUnavailableError(LLMProviderServiceError):
    """429, 503 or 504: the service or its provider cannot serve this now."""


class ComparisonFailedError(LLMProviderServiceError):
    """A queued request ended without a result: `final_status` is failed, expired or
    cancelled; `queue_id` names it. Also raised for a result event that carries an error."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        queue_id: UUID | None,
        final_status: QueueStatus,
        correlation_id: UUID | None = None,
    ) -> None:
        super().__init__(message, code=code, correlation_id=correlation_id)
        self.queue_id = queue_id
        self.final_status = final_status


class DeadlineExceededError(LLMProviderServiceError):
    """The caller's deadline passed before the result arrived. The request is NOT cancelled:
    when `queue_id` is set it is queued, its result will still be published, and
    `LLMProviderClient.cancel(queue_id)` withdraws it if it is still waiting. Calling
    `compare` again with the same `idempotency_key` resumes waiting for the same request."""

    def __init__(
        self, message: str, *, queue_id: UUID | None, idempotency_key: str | None = None
    ) -> None:
        super().__init__(message, code="DEADLINE_EXCEEDED")
        self.queue_id = queue_id
        self.idempotency_key = idempotency_key


class TransportError(LLMProviderServiceError):
    """No HTTP answer: the connection failed or the answer timed out (after the retries)."""


ERROR_CLASSES: Mapping[str, type[LLMProviderServiceError]] = MappingProxyType(
    {
        ErrorCode.VALIDATION_ERROR: RequestRejectedError,
        ErrorCode.PAYLOAD_TOO_LARGE: RequestRejectedError,
        ErrorCode.UNKNOWN_PROVIDER: RequestRejectedError,
        ErrorCode.CACHE_NOT_ALLOWED: RequestRejectedError,
        ErrorCode.CALLBACK_NOT_ALLOWED: RequestRejectedError,
        ErrorCode.BATCH_NOT_SUPPORTED: RequestRejectedError,
        ErrorCode.NOT_FOUND: RequestRejectedError,
        ErrorCode.METHOD_NOT_ALLOWED: RequestRejectedError,
        ErrorCode.BAD_REQUEST: RequestRejectedError,
        ErrorCode.REQUEST_TIMEOUT: RequestRejectedError,
        ErrorCode.UNSUPPORTED_MEDIA_TYPE: RequestRejectedError,
        ErrorCode.HEADERS_TOO_LARGE: RequestRejectedError,
        ErrorCode.NOT_IMPLEMENTED: RequestRejectedError,
        ErrorCode.CONFLICT: RequestRejectedError,
        ErrorCode.CALLER_LIMIT_EXCEEDED: RequestRejectedError,
        ErrorCode.MAX_TOKENS_TOO_LOW: RequestRejectedError,
        ErrorCode.UNAUTHORIZED: AuthenticationError,
        ErrorCode.FORBIDDEN: ForbiddenError,
        ErrorCode.IDEMPOTENCY_KEY_REUSED: IdempotencyKeyReusedError,
        ErrorCode.PROVIDER_AUTH_ERROR: ProviderFailedError,
        ErrorCode.PROVIDER_BAD_REQUEST: ProviderFailedError,
        ErrorCode.INVALID_PROVIDER_RESPONSE: ProviderFailedError,
        ErrorCode.PROVIDER_UNAVAILABLE: ServiceUnavailableError,
        ErrorCode.PROVIDER_TIMEOUT: ServiceUnavailableError,
        ErrorCode.PROVIDER_NOT_CONFIGURED: ServiceUnavailableError,
        ErrorCode.PROVIDER_DISABLED: ServiceUnavailableError,
        ErrorCode.QUEUE_UNAVAILABLE: ServiceUnavailableError,
        ErrorCode.QUEUE_FULL: ServiceUnavailableError,
        ErrorCode.QUEUE_MEMORY_FULL: ServiceUnavailableError,
        # 429: this caller's quota; retried after its Retry-After, like any 429.
        ErrorCode.QUOTA_EXCEEDED: ServiceUnavailableError,
        # These three only ever describe how a queued request ended (status `error`).
        ErrorCode.REQUEST_EXPIRED: ComparisonFailedError,
        ErrorCode.REQUEST_CANCELLED: ComparisonFailedError,
        ErrorCode.LEASE_EXPIRED: ComparisonFailedError,
        ErrorCode.INTERNAL_ERROR: LLMProviderServiceError,
    }
)
"""Every stable error code and the class it raises (the tree in the module docstring)."""


def class_for_status(status: int, *, service_shaped: bool) -> type[LLMProviderServiceError]:
    """The class for an answer whose code is unknown, by its HTTP status. A 502 is a
    provider failure only when the service said so (`service_shaped`); a bare 502 comes
    from a proxy that could not reach the service, which is an outage."""
    if status == 401:
        return AuthenticationError
    if status == 403:
        return ForbiddenError
    if status in (429, 503, 504) or (status == 502 and not service_shaped):
        return ServiceUnavailableError
    if status == 502:
        return ProviderFailedError
    if 400 <= status < 500:
        return RequestRejectedError
    return LLMProviderServiceError


def error_from_response(
    status: int, body: bytes, headers: Mapping[str, str], *, retry_after: float | None = None
) -> LLMProviderServiceError:
    """The typed error for an HTTP answer that is neither 200 nor 202 (never raises).

    `headers` is looked up as given (pass httpx's case-insensitive headers); `retry_after`
    is the already parsed Retry-After header.
    """
    try:
        detail = ErrorResponse.model_validate_json(body).error
    except ValidationError:
        cls = class_for_status(status, service_shaped=False)
        text = body.decode("utf-8", errors="replace").strip()[:_BODY_EXCERPT_CHARS]
        message = f"HTTP {status} without the service's error body" + (f": {text}" if text else "")
        return cls(
            message,
            status=status,
            correlation_id=_uuid_or_none(headers.get(CORRELATION_HEADER)),
            retry_after=retry_after,
        )
    cls = ERROR_CLASSES.get(detail.code) or class_for_status(status, service_shaped=True)
    if cls is ComparisonFailedError:  # not an HTTP answer the API gives; keep the status
        cls = class_for_status(status, service_shaped=True)
    return cls(
        detail.message,
        code=detail.code,
        status=status,
        details=detail.details,
        correlation_id=detail.correlation_id or _uuid_or_none(headers.get(CORRELATION_HEADER)),
        retry_after=retry_after,
    )


def is_transient(error: LLMProviderServiceError) -> bool:
    """Whether `compare` retries after `error` (with the same Idempotency-Key).

    Retried: no answer (timeouts, connection failures), 429, 503 and 504 except
    PROVIDER_NOT_CONFIGURED and PROVIDER_DISABLED (configuration, not an outage), a 502
    without the service's error body (a proxy), and 409 CONFLICT with Retry-After (the first
    request with this key is still being served). Nothing else.
    """
    if isinstance(error, TransportError):
        return error.code in (TRANSPORT_TIMEOUT, TRANSPORT_CONNECTION)
    status = error.status
    if status in (429, 503, 504):
        return error.code not in (ErrorCode.PROVIDER_NOT_CONFIGURED, ErrorCode.PROVIDER_DISABLED)
    if status == 502:
        return error.code == UNKNOWN_CODE
    return status == 409 and error.code == ErrorCode.CONFLICT and error.retry_after is not None


def default_failure_code(status: QueueStatus) -> str:
    """The code of a request that ended `status` without an `error` (a cancelled one)."""
    if status is QueueStatus.CANCELLED:
        return ErrorCode.REQUEST_CANCELLED.value
    if status is QueueStatus.EXPIRED:
        return ErrorCode.REQUEST_EXPIRED.value
    return status.value.upper()


def _uuid_or_none(value: str | None) -> UUID | None:
    if not value:
        return None
    try:
        return UUID(value)
    except ValueError:
        return None
