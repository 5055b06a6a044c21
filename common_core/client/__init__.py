"""The async client of the LLM Provider Service, for consuming services (CJ Assessment,
AI Feedback). Guide: `documentation/client.md`.

    async with LLMProviderClient("http://llm-provider:8080") as client:
        result = await client.compare(ComparisonRequest(user_prompt=..., essay_a=..., essay_b=...))
"""

from common_core.client.backoff import backoff_delay, parse_retry_after
from common_core.client.client import LLMProviderClient
from common_core.client.errors import (
    ERROR_CLASSES,
    AuthenticationError,
    ComparisonFailedError,
    DeadlineExceededError,
    ForbiddenError,
    IdempotencyKeyReusedError,
    LLMProviderServiceError,
    ProviderFailedError,
    RequestRejectedError,
    ServiceUnavailableError,
    TransportError,
)
from common_core.client.events import NotAResultEventError, result_from_event
from common_core.client.progress import Progress

__all__ = [
    "ERROR_CLASSES",
    "AuthenticationError",
    "ComparisonFailedError",
    "DeadlineExceededError",
    "ForbiddenError",
    "IdempotencyKeyReusedError",
    "LLMProviderClient",
    "LLMProviderServiceError",
    "NotAResultEventError",
    "Progress",
    "ProviderFailedError",
    "RequestRejectedError",
    "ServiceUnavailableError",
    "TransportError",
    "backoff_delay",
    "parse_retry_after",
    "result_from_event",
]
