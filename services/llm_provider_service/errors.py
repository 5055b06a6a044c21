"""The service's error tree; every failure a caller can see is one of these.

    ServiceError                      code, http_status, message, details, retry_after
    ├── RequestError                  the caller's request cannot be served as sent (4xx)
    │   ├── RequestValidationError    VALIDATION_ERROR 400
    │   ├── PayloadTooLargeError      PAYLOAD_TOO_LARGE 413
    │   ├── UnsupportedMediaTypeError UNSUPPORTED_MEDIA_TYPE 415: a body that is not JSON
    │   ├── UnknownProviderError      UNKNOWN_PROVIDER 400
    │   ├── CacheNotAllowedError      CACHE_NOT_ALLOWED 400
    │   ├── CallbackNotAllowedError   CALLBACK_NOT_ALLOWED 400
    │   ├── BatchNotSupportedError    BATCH_NOT_SUPPORTED 400
    │   ├── NotFoundError             NOT_FOUND 404
    │   ├── ConflictError             CONFLICT / IDEMPOTENCY_KEY_REUSED 409
    │   ├── UnauthorizedError         UNAUTHORIZED 401: no key, or an unknown one
    │   ├── ForbiddenError            FORBIDDEN 403: the caller may not do this
    │   ├── QuotaExceededError        QUOTA_EXCEEDED 429, with retry_after
    │   ├── CallerLimitError          CALLER_LIMIT_EXCEEDED 422: beyond the caller's own cap
    │   └── MaxTokensTooLowError      MAX_TOKENS_TOO_LOW 422: the vendor stopped at the token
    │                                 limit before the judgement was complete; not a failure
    ├── ProviderError                 an LLM vendor failed; `provider`, `retryable`
    │   ├── ProviderAuthError         PROVIDER_AUTH_ERROR 502, not retryable, not an outage
    │   ├── ProviderBadRequestError   PROVIDER_BAD_REQUEST 502, not retryable
    │   ├── InvalidProviderResponseError  INVALID_PROVIDER_RESPONSE 502, not retryable
    │   ├── ProviderUnavailableError  PROVIDER_UNAVAILABLE 503, retryable (5xx, 429,
    │   │   │                         connection); `reason` says which
    │   │   └── CircuitOpenError      PROVIDER_UNAVAILABLE 503, the breaker refused the call
    │   ├── ProviderTimeoutError      PROVIDER_TIMEOUT 504, retryable
    │   └── ProviderNotConfiguredError  PROVIDER_NOT_CONFIGURED / PROVIDER_DISABLED 503
    ├── QueueError
    │   ├── QueueUnavailableError     QUEUE_UNAVAILABLE 503, retryable
    │   │   └── QueueMemoryFullError  QUEUE_MEMORY_FULL 503, retryable: Redis refused a
    │   │                             write at its maxmemory (OOM)
    │   └── QueueFullError            QUEUE_FULL 503, retryable
    └── EventPublishError             an event could not be handed to the broker

Adapters translate SDK, Redis and Kafka exceptions into these with `raise ... from e`;
`api/errors.py` turns them into HTTP responses, and nothing else does (its docstring lists
the codes it gives Quart's own refusals, and those of the answers Hypercorn makes itself).
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from common_core.api_models import ErrorInfo, TokenUsage
from common_core.enums import ErrorCode, LLMProviderType


class ServiceError(Exception):
    """Root of every error the service reports to a caller."""

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL_ERROR
    http_status: ClassVar[int] = 500
    # What the failed call(s) cost, where the vendor billed them (a `ProviderError` after an
    # answer outside the schema, and its re-asks); None when nothing is known to have been spent.
    spent: TokenUsage | None = None

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        retry_after: float | None = None,
        code: ErrorCode | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = dict(details or {})
        self.retry_after = retry_after
        if code is not None:
            self.code = code  # type: ignore[misc]  # a per-instance refinement of the class code

    def with_code(self, code: ErrorCode) -> Self:
        """The same error under a more specific stable code."""
        self.code = code  # type: ignore[misc]
        return self

    def info(self, model: str | None = None) -> ErrorInfo:
        """This outcome as a request's `error` (status body, queue record, result event)."""
        return ErrorInfo(
            code=self.code.value,
            message=self.message,
            details=self.details,
            model=model or self.details.get("model"),
            token_usage=self.spent,
        )


class RequestError(ServiceError):
    http_status = 400


class RequestValidationError(RequestError):
    code = ErrorCode.VALIDATION_ERROR


class PayloadTooLargeError(RequestError):
    code = ErrorCode.PAYLOAD_TOO_LARGE
    http_status = 413


class UnsupportedMediaTypeError(RequestError):
    code = ErrorCode.UNSUPPORTED_MEDIA_TYPE
    http_status = 415


class UnknownProviderError(RequestError):
    code = ErrorCode.UNKNOWN_PROVIDER


class CacheNotAllowedError(RequestError):
    code = ErrorCode.CACHE_NOT_ALLOWED


class CallbackNotAllowedError(RequestError):
    code = ErrorCode.CALLBACK_NOT_ALLOWED


class BatchNotSupportedError(RequestError):  # batch mode for a provider/model without one
    code = ErrorCode.BATCH_NOT_SUPPORTED


class NotFoundError(RequestError):
    code = ErrorCode.NOT_FOUND
    http_status = 404


class ConflictError(RequestError):
    code = ErrorCode.CONFLICT
    http_status = 409


class UnauthorizedError(RequestError):
    code = ErrorCode.UNAUTHORIZED
    http_status = 401


class ForbiddenError(RequestError):
    code = ErrorCode.FORBIDDEN
    http_status = 403


class QuotaExceededError(RequestError):
    """A caller's own quota (`details.quota`: requests_per_minute or max_queued) is used up;
    `retry_after` says when it frees up."""

    code = ErrorCode.QUOTA_EXCEEDED
    http_status = 429


class CallerLimitError(RequestError):
    """The request asks for more than its caller's policy allows (`details.field`, e.g. a
    priority above `max_priority`, and `details.limit`); as sent it will never be served."""

    code = ErrorCode.CALLER_LIMIT_EXCEEDED
    http_status = 422


class MaxTokensTooLowError(RequestError):
    """The vendor stopped at the token limit (the caller's `max_tokens_override`, or the
    default) before its judgement was complete. The caller's own setting, not a provider
    failure: it never counts toward the breaker, `last_error` or the failure counters, and
    it is never re-asked (the same limit would cut the answer off again)."""

    code = ErrorCode.MAX_TOKENS_TOO_LOW
    http_status = 422
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        provider: LLMProviderType,
        *,
        max_tokens: int | None,
        stop_reason: str,
        model: str | None = None,
    ) -> None:
        limit = f"max_tokens={max_tokens}" if max_tokens is not None else "its token limit"
        super().__init__(
            f"{provider.value} stopped at {limit} ({stop_reason}) before its judgement was "
            "complete; raise llm_config_overrides.max_tokens_override",
            details={
                "provider": provider.value,
                "field": "llm_config_overrides.max_tokens_override",
                "max_tokens": max_tokens,
                "stop_reason": stop_reason,
                **({"model": model} if model else {}),
            },
        )
        self.provider = provider


class ProviderError(ServiceError):
    """A vendor call failed. `retryable` errors count toward the provider's circuit breaker."""

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        provider: LLMProviderType,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        merged = {"provider": provider.value, **(details or {})}
        if status is not None:
            merged["upstream_status"] = status
        super().__init__(message, details=merged, retry_after=retry_after)
        self.provider = provider
        self.status = status


class ProviderAuthError(ProviderError):
    code = ErrorCode.PROVIDER_AUTH_ERROR
    http_status = 502


class ProviderBadRequestError(ProviderError):
    code = ErrorCode.PROVIDER_BAD_REQUEST
    http_status = 502


class InvalidProviderResponseError(ProviderError):
    code = ErrorCode.INVALID_PROVIDER_RESPONSE
    http_status = 502


class ProviderUnavailableError(ProviderError):
    """The vendor is down or refusing work for now (5xx, 429, connection failure)."""

    code = ErrorCode.PROVIDER_UNAVAILABLE
    http_status = 503
    retryable = True

    def __init__(
        self,
        provider: LLMProviderType,
        message: str,
        *,
        reason: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            provider, message, status=status, retry_after=retry_after, details={"reason": reason}
        )
        self.reason = reason


class CircuitOpenError(ProviderUnavailableError):
    """The provider's breaker refused the call; no request reached the vendor."""

    def __init__(self, provider: LLMProviderType, retry_after: float) -> None:
        super().__init__(
            provider,
            f"{provider.value} is unavailable: its circuit breaker is open",
            reason="circuit_open",
            retry_after=retry_after,
        )


class ProviderTimeoutError(ProviderError):
    code = ErrorCode.PROVIDER_TIMEOUT
    http_status = 504
    retryable = True


class ProviderNotConfiguredError(ProviderError):
    """The provider has no API key or is disabled; not an outage, so never queued."""

    code = ErrorCode.PROVIDER_NOT_CONFIGURED
    http_status = 503


class QueueError(ServiceError):
    http_status = 503


class QueueUnavailableError(QueueError):
    code = ErrorCode.QUEUE_UNAVAILABLE


class QueueMemoryFullError(QueueUnavailableError):
    """Redis is reachable but refuses writes at its `maxmemory` (an OOM reply). A subclass
    of `QueueUnavailableError`, so every path that survives an unreachable Redis survives
    this too; only its code tells the caller why."""

    code = ErrorCode.QUEUE_MEMORY_FULL


class QueueFullError(QueueError):
    code = ErrorCode.QUEUE_FULL


class EventPublishError(ServiceError):
    """An event could not be handed over; never shown to a caller as such."""

    http_status = 503
