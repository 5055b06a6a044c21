"""How Gemini's answers and failures are read: one place for the realtime call, the flex lane
and each row of a Batch API job.

`read_judgement` takes the judgement from a 200 `GenerateContentResponse` (thought parts
excluded, checked strictly by `parse_judgement`; stopping at MAX_TOKENS without a readable
judgement is `MaxTokensTooLowError`), `read_usage` its token accounting, and
`translate_error` turns whatever the SDK raised into the service's `ProviderError`.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import httpx
import httpx2
import pydantic
from google.genai import errors as genai_errors
from google.genai import types

from common_core.api_models import TokenUsage
from common_core.enums import LLMProviderType
from services.llm_provider_service.errors import (
    InvalidProviderResponseError,
    MaxTokensTooLowError,
    ProviderError,
)
from services.llm_provider_service.models import Judgement
from services.llm_provider_service.providers.http_errors import (
    connection_error,
    error_for_status,
    retry_after_seconds,
    timeout_error,
)
from services.llm_provider_service.providers.judgement import parse_judgement

logger = logging.getLogger(__name__)

_PROVIDER = LLMProviderType.GOOGLE
_RETRY_DELAY = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def translate_error(exc: Exception, timeout: float) -> ProviderError:
    """The service error for whatever the SDK (or the deadline) raised."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, genai_errors.APIError):
        return error_for_status(
            _PROVIDER,
            exc.code,
            str(exc.message or exc.status or "error"),
            retry_after=_retry_after(exc),
        )
    timeouts = (httpx2.TimeoutException, httpx.TimeoutException, TimeoutError)
    if isinstance(exc, timeouts):
        return timeout_error(_PROVIDER, timeout)
    if isinstance(exc, httpx2.TransportError | httpx.TransportError | OSError):
        return connection_error(_PROVIDER, str(exc) or type(exc).__name__)
    if isinstance(exc, json.JSONDecodeError | pydantic.ValidationError):
        return InvalidProviderResponseError(
            _PROVIDER, f"gemini returned a body that is not a response: {type(exc).__name__}"
        )
    logger.warning("unexpected error from the google-genai SDK", exc_info=exc)
    return InvalidProviderResponseError(
        _PROVIDER, f"gemini call failed unexpectedly: {type(exc).__name__}: {exc}"[:500]
    )


def _retry_after(exc: genai_errors.APIError) -> float | None:
    """`Retry-After` if sent, else the `RetryInfo.retryDelay` ("2s") of the error details."""
    response: Any = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    seconds = retry_after_seconds(headers) if headers is not None else None
    if seconds is not None:
        return seconds
    details = exc.details.get("error", exc.details) if isinstance(exc.details, dict) else {}
    for item in details.get("details") or [] if isinstance(details, dict) else []:
        delay = item.get("retryDelay") if isinstance(item, dict) else None
        match = _RETRY_DELAY.match(delay) if isinstance(delay, str) else None
        if match:
            return float(match.group(1))
    return None


def read_judgement(
    response: types.GenerateContentResponse,
    model: str,
    usage: TokenUsage,
    max_tokens: int | None = None,
) -> Judgement:
    """The judgement in a 200 answer; what this raises beyond `ServiceError`s (a body of
    another shape) `ask_until_valid` turns into `InvalidProviderResponseError`."""
    candidate = response.candidates[0] if response.candidates else None
    if candidate is None:
        feedback = response.prompt_feedback
        reason = feedback.block_reason if feedback is not None else None
        raise InvalidProviderResponseError(
            _PROVIDER, f"gemini returned no candidate (block_reason={reason})"
        )
    answered = response.model_version or model
    try:
        parts = candidate.content.parts if candidate.content is not None else None
        text = "".join(p.text for p in parts or [] if p.text is not None and not p.thought)
        if not text:
            raise InvalidProviderResponseError(
                _PROVIDER,
                f"gemini returned no judgement (finish_reason={candidate.finish_reason})",
            )
        return parse_judgement(
            _PROVIDER,
            text,
            model=answered,
            usage=usage,
            provider_request_id=response.response_id,
        )
    except InvalidProviderResponseError as exc:
        if candidate.finish_reason == types.FinishReason.MAX_TOKENS:
            raise MaxTokensTooLowError(
                _PROVIDER, max_tokens=max_tokens, stop_reason="MAX_TOKENS", model=answered
            ) from exc
        raise


def read_usage(response: types.GenerateContentResponse) -> TokenUsage:
    meta = response.usage_metadata
    if meta is None:
        return TokenUsage()
    prompt = meta.prompt_token_count or 0
    completion = (meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0)
    return TokenUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=meta.total_token_count or prompt + completion,
        cached_prompt_tokens=meta.cached_content_token_count or 0,
    )
