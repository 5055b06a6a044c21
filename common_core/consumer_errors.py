"""Our error codes as the values of HuleEdu's platform-wide `ErrorCode` enum.

CJ Assessment validates a result event's `error_detail.error_code` against that enum
(`huleedu-consumer.md`), so every code of ours has one of its values here: the LLM-specific
ones where one fits, else a generic one. The table is additive information: `code` keeps our
own value beside it. `documentation/events.md` lists it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common_core.enums import ErrorCode

CONSUMER_ERROR_CODES: dict[ErrorCode, str] = {
    ErrorCode.VALIDATION_ERROR: "VALIDATION_ERROR",
    ErrorCode.PAYLOAD_TOO_LARGE: "LLM_CONTENT_TOO_LONG",
    ErrorCode.UNKNOWN_PROVIDER: "LLM_INVALID_CONFIG",
    ErrorCode.PROVIDER_NOT_CONFIGURED: "LLM_CONFIGURATION_ERROR",
    ErrorCode.PROVIDER_DISABLED: "LLM_CONFIGURATION_ERROR",
    ErrorCode.CACHE_NOT_ALLOWED: "LLM_INVALID_CONFIG",
    ErrorCode.CALLBACK_NOT_ALLOWED: "LLM_INVALID_CALLBACK_TOPIC",
    ErrorCode.BATCH_NOT_SUPPORTED: "LLM_INVALID_CONFIG",
    ErrorCode.NOT_FOUND: "RESOURCE_NOT_FOUND",
    ErrorCode.METHOD_NOT_ALLOWED: "INVALID_REQUEST",
    ErrorCode.BAD_REQUEST: "INVALID_REQUEST",
    ErrorCode.REQUEST_TIMEOUT: "TIMEOUT",
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: "INVALID_REQUEST",
    ErrorCode.HEADERS_TOO_LARGE: "INVALID_REQUEST",
    ErrorCode.NOT_IMPLEMENTED: "INVALID_REQUEST",
    ErrorCode.UNAUTHORIZED: "AUTHENTICATION_ERROR",
    ErrorCode.FORBIDDEN: "AUTHORIZATION_ERROR",
    ErrorCode.QUOTA_EXCEEDED: "QUOTA_EXCEEDED",
    ErrorCode.CALLER_LIMIT_EXCEEDED: "VALIDATION_ERROR",
    ErrorCode.MAX_TOKENS_TOO_LOW: "VALIDATION_ERROR",
    ErrorCode.CONFLICT: "PROCESSING_ERROR",
    ErrorCode.IDEMPOTENCY_KEY_REUSED: "VALIDATION_ERROR",
    # The service's own key for the vendor was refused: the service is misconfigured.
    ErrorCode.PROVIDER_AUTH_ERROR: "LLM_CONFIGURATION_ERROR",
    ErrorCode.PROVIDER_BAD_REQUEST: "LLM_PROVIDER_API_ERROR",
    ErrorCode.INVALID_PROVIDER_RESPONSE: "LLM_INVALID_RESPONSE",
    ErrorCode.PROVIDER_UNAVAILABLE: "LLM_PROVIDER_UNAVAILABLE",  # 429: see RATE_LIMITED
    ErrorCode.PROVIDER_TIMEOUT: "LLM_PROVIDER_TIMEOUT",
    ErrorCode.QUEUE_UNAVAILABLE: "SERVICE_UNAVAILABLE",
    ErrorCode.QUEUE_FULL: "LLM_QUEUE_FULL",
    ErrorCode.QUEUE_MEMORY_FULL: "SERVICE_UNAVAILABLE",
    # Waited in the queue past its TTL, the provider being down all that time.
    ErrorCode.REQUEST_EXPIRED: "TIMEOUT",
    ErrorCode.REQUEST_CANCELLED: "PROCESSING_ERROR",
    ErrorCode.LEASE_EXPIRED: "LLM_INTERNAL_ERROR",
    ErrorCode.INTERNAL_ERROR: "LLM_INTERNAL_ERROR",
}
RATE_LIMITED = "LLM_PROVIDER_RATE_LIMIT"
UNKNOWN = "UNKNOWN_ERROR"


def consumer_error_code(code: str, details: Mapping[str, Any] | None = None) -> str:
    """The consumer's value for our `code`; a provider's 429 (our PROVIDER_UNAVAILABLE with
    `details.reason` "rate_limited") is its rate-limit value; a code we do not know (from a
    newer replica) is "UNKNOWN_ERROR"."""
    if details and details.get("reason") == "rate_limited":
        return RATE_LIMITED
    try:
        return CONSUMER_ERROR_CODES[ErrorCode(code)]
    except ValueError:
        return UNKNOWN
