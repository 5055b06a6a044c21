"""The openai SDK's failures as the batch lane's errors, for the OpenAI and OpenRouter Batch APIs.

A create (or OpenAI's upload before it) that the vendor answered with a 4xx made no batch:
`BatchCreateRefusedError`, with `Retry-After`. A timeout, a dropped connection, a 5xx or an
unreadable 2xx may have made one: `BatchCreateAmbiguousError`. Every other call's failure is
`BatchAPIUnavailableError` (the engine tries again later).
"""

from __future__ import annotations

import httpx2
import openai

from common_core.enums import LLMProviderType
from services.llm_provider_service.batch.models import (
    BatchAPIUnavailableError,
    BatchCreateAmbiguousError,
    BatchCreateRefusedError,
)
from services.llm_provider_service.providers.http_errors import retry_after_seconds

SDK_FAILURES: tuple[type[Exception], ...] = (openai.APIError, httpx2.HTTPError, ValueError)
"""What a call through the SDK raises when the vendor did not answer as expected (a body that
is not JSON is a `ValueError`; a stream cut midway an `httpx2` error)."""


def is_status(exc: BaseException, *statuses: int) -> bool:
    return isinstance(exc, openai.APIStatusError) and exc.status_code in statuses


def refused(provider: LLMProviderType, exc: Exception, what: str) -> BatchCreateRefusedError:
    """`what` (a create, an upload) definitely made no batch."""
    retry_after = None
    capacity = True  # no answer at all (an upload that never connected): not the entries
    if isinstance(exc, openai.APIStatusError):
        retry_after = retry_after_seconds(exc.response.headers)
        capacity = exc.status_code == 429
    return BatchCreateRefusedError(
        f"{provider.value} refused the batch {what}: {_describe(exc)}"[:500],
        retry_after=retry_after,
        capacity=capacity,
    )


def create_failure(
    provider: LLMProviderType, exc: Exception
) -> BatchCreateRefusedError | BatchCreateAmbiguousError:
    """A create's failure: refused for a 4xx answer, ambiguous for anything else."""
    if isinstance(exc, openai.APIStatusError) and exc.status_code < 500:
        return refused(provider, exc, "create")
    return BatchCreateAmbiguousError(
        f"{provider.value} batch create may have made a batch: {_describe(exc)}"[:500]
    )


def unavailable(provider: LLMProviderType, exc: Exception, what: str) -> BatchAPIUnavailableError:
    return BatchAPIUnavailableError(f"{provider.value} batch {what} failed: {_describe(exc)}"[:500])


def _describe(exc: Exception) -> str:
    if isinstance(exc, openai.APIStatusError):
        return f"{exc.status_code} {exc.message}"
    return f"{type(exc).__name__}: {exc}"
