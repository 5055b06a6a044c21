"""Vendor HTTP failures as the service's errors: one table for every adapter."""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping

from common_core.enums import LLMProviderType
from services.llm_provider_service.errors import (
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """`Retry-After` (seconds or an HTTP date) or `retry-after-ms`, when the vendor sent one."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    if (ms := lowered.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value.strip())
        except (TypeError, ValueError, IndexError, OverflowError):
            return None  # unreadable (e.g. "soon"): as if the vendor had sent none
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def error_for_status(
    provider: LLMProviderType,
    status: int,
    message: str,
    *,
    retry_after: float | None = None,
) -> ProviderError:
    """The service error for a vendor's HTTP status.

    401/403 are configuration problems, not outages (never retried, never trip the breaker);
    other 4xx are our request's fault; 408, 409, 429, 5xx and 529 (overloaded) are outages.
    """
    text = f"{provider.value} answered {status}: {message}"[:500]
    if status in (401, 403):
        return ProviderAuthError(provider, text, status=status)
    if status == 429:
        return ProviderUnavailableError(
            provider, text, reason="rate_limited", status=status, retry_after=retry_after
        )
    if status in (408, 409) or status >= 500:
        return ProviderUnavailableError(
            provider, text, reason="server_error", status=status, retry_after=retry_after
        )
    return ProviderBadRequestError(provider, text, status=status)


def timeout_error(provider: LLMProviderType, seconds: float) -> ProviderTimeoutError:
    return ProviderTimeoutError(provider, f"{provider.value} did not answer within {seconds:g} s")


def connection_error(provider: LLMProviderType, detail: str) -> ProviderUnavailableError:
    return ProviderUnavailableError(
        provider, f"cannot reach {provider.value}: {detail}"[:500], reason="connection_error"
    )
