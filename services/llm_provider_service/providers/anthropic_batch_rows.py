"""What `AnthropicBatchAPI` reads: a Message Batch as a `BatchPoll`, and each line of its
results as a `BatchRow`, checked exactly as the realtime answer is.

The SDK builds its batch and result objects without validating them, so every field is
read defensively: a line of an unexpected shape is an ERRORED row, never an exception.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from common_core.api_models import TokenUsage
from common_core.enums import ErrorCode, LLMProviderType
from services.llm_provider_service.batch.models import BatchPoll, BatchRow, BatchState, RowOutcome
from services.llm_provider_service.errors import (
    InvalidProviderResponseError,
    MaxTokensTooLowError,
    ProviderError,
)
from services.llm_provider_service.providers.anthropic_answer import read_judgement, token_usage
from services.llm_provider_service.providers.http_errors import error_for_status

logger = logging.getLogger(__name__)

_PROVIDER = LLMProviderType.ANTHROPIC

# Anthropic's error types as the HTTP status a realtime call would have answered with, so
# one table (`error_for_status`) decides final vs retryable: invalid_request_error (400),
# not_found_error (404) and request_too_large (413) mean "fix the request"; rate limits,
# api_error, overloaded_error and timeouts are retried. An unknown type counts as a 500.
ERROR_STATUSES: Final[dict[str, int]] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "gateway_timeout_error": 504,
    "overloaded_error": 529,
}

# `processing_status` in the engine's terms. An ended batch always has rows (a cancelled or
# expired one too: its unrun entries are `canceled` / `expired` rows).
STATES: Final[dict[str, BatchState]] = {
    "in_progress": BatchState.RUNNING,
    "canceling": BatchState.RUNNING,
    "ended": BatchState.ENDED,
}


def poll_of(batch: Any) -> BatchPoll:
    """A retrieved (or listed) `MessageBatch` as a `BatchPoll`; an unknown status is RUNNING
    (looked at again next time), its word kept in `provider_status`; an ended batch whose
    results were archived is FAILED, retryable."""
    status = getattr(batch, "processing_status", None)
    word = status if isinstance(status, str) else "unknown"
    if word == "ended" and getattr(batch, "archived_at", None) is not None:
        # Past Anthropic's 29 days the results are gone: never readable, so the entries
        # go back to the queue.
        error = "anthropic archived the batch: its results are no longer available"
        return BatchPoll(BatchState.FAILED, word, error=error, retryable=True)
    return BatchPoll(state=STATES.get(word, BatchState.RUNNING), provider_status=word)


def gone_poll(batch_id: str) -> BatchPoll:
    """A batch the vendor no longer knows (404 on retrieve): it will never have rows, and
    its entries were not judged, so they go back to the queue unspent."""
    return BatchPoll(
        state=BatchState.FAILED,
        provider_status="not_found",
        error=f"anthropic has no message batch {batch_id}",
        retryable=True,
    )


def row_of(line: Any, model: str) -> BatchRow | None:
    """One results line as a row; None for a line without a custom id (nothing to apply it
    to). `model` is the batch's, reported when the message names none."""
    custom_id = getattr(line, "custom_id", None)
    if not isinstance(custom_id, str) or not custom_id:
        logger.warning("anthropic batch result line without a custom_id; skipped")
        return None
    result = getattr(line, "result", None)
    kind = getattr(result, "type", None)
    if kind == "succeeded":
        return _succeeded(custom_id, getattr(result, "message", None), model)
    if kind == "errored":
        return BatchRow(custom_id, RowOutcome.ERRORED, error=item_error(result))
    if kind in ("canceled", "expired"):
        return BatchRow(custom_id, RowOutcome.NOT_RUN)
    error = InvalidProviderResponseError(
        _PROVIDER, f"anthropic batch result of unknown type {kind!r}"[:500]
    )
    return BatchRow(custom_id, RowOutcome.ERRORED, error=error)


def item_error(result: Any) -> ProviderError:
    """The service error for an `errored` result, as the realtime call would have raised."""
    response = getattr(result, "error", None)
    body = getattr(response, "error", None)
    kind = getattr(body, "type", None)
    message = getattr(body, "message", None)
    status = ERROR_STATUSES.get(kind, 500) if isinstance(kind, str) else 500
    text = f"{kind}: {message}" if isinstance(message, str) else str(kind)
    error = error_for_status(_PROVIDER, status, text)
    request_id = getattr(response, "request_id", None)
    if isinstance(request_id, str):
        error.details["provider_request_id"] = request_id
    return error


def _succeeded(custom_id: str, message: Any, model: str) -> BatchRow:
    usage = _usage(message)
    try:
        judgement = read_judgement(message, usage, model=model, max_tokens=None)
    except MaxTokensTooLowError as exc:
        return BatchRow(custom_id, RowOutcome.ERRORED, error=_cut_off(exc, usage))
    except ProviderError as exc:
        exc.spent = usage if usage != TokenUsage() else None
        return BatchRow(custom_id, RowOutcome.ERRORED, error=exc)
    except Exception as exc:  # a message of another shape altogether
        error = InvalidProviderResponseError(
            _PROVIDER,
            f"anthropic batch result is not a message ({type(exc).__name__})",
            details={"model": model},
        )
        error.spent = usage if usage != TokenUsage() else None
        return BatchRow(custom_id, RowOutcome.ERRORED, error=error)
    return BatchRow(custom_id, RowOutcome.SUCCEEDED, judgement=judgement)


def _cut_off(exc: MaxTokensTooLowError, usage: TokenUsage) -> ProviderError:
    """The answer stopped at the token limit: final (the same limit would cut it again),
    reported to the caller under MAX_TOKENS_TOO_LOW with the realtime error's words."""
    error = InvalidProviderResponseError(_PROVIDER, exc.message, details=exc.details)
    error.spent = usage if usage != TokenUsage() else None
    return error.with_code(ErrorCode.MAX_TOKENS_TOO_LOW)


def _usage(message: Any) -> TokenUsage:
    """The row's billed tokens, or none where the message has no readable usage."""
    try:
        return token_usage(message)
    except Exception:  # the judgement step reports what is wrong with the message
        return TokenUsage()
