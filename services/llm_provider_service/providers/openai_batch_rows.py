"""One result row of an OpenAI or OpenRouter batch as a `BatchRow`, read by the realtime code.

Both vendors write a row as `{"custom_id", "response": {"status_code", "request_id", "body"},
"error"}` (OpenAI in its output and error files, OpenRouter inline). A 200 body is a chat
completion, read and checked by `judgement_from_completion` exactly as a realtime answer is;
what the realtime path raises becomes the row's error (an answer cut off at the token limit
is a non-retryable `InvalidProviderResponseError` saying so). An error status maps through
`error_for_status` (400/404/422 fix-the-request, 429/5xx retryable); a row that never ran
(`batch_expired`, `batch_cancelled`) is NOT_RUN.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from openai.types.chat import ChatCompletion

from common_core.enums import LLMProviderType
from services.llm_provider_service.batch.models import BatchRow, RowOutcome
from services.llm_provider_service.errors import (
    InvalidProviderResponseError,
    ProviderError,
    ProviderUnavailableError,
)
from services.llm_provider_service.providers.http_errors import error_for_status
from services.llm_provider_service.providers.openai_answer import (
    judgement_from_completion,
    not_a_completion,
)

logger = logging.getLogger(__name__)

NOT_RUN_CODES = frozenset({"batch_expired", "batch_cancelled", "batch_canceled"})
"""Error codes of rows the vendor never ran (OpenAI's expiry code is documented; the
cancel code is the one OpenAI-compatible clones use, research §3.4)."""


def row_from_line(provider: LLMProviderType, line: bytes | str, model: str) -> BatchRow | None:
    """The row one JSONL line holds; None (logged) for a line that names no custom id."""
    try:
        data = json.loads(line)
    except ValueError:
        logger.warning("%s batch result line is not JSON; skipped", provider.value)
        return None
    return row_from_object(provider, data, model)


def row_from_object(provider: LLMProviderType, data: Any, model: str) -> BatchRow | None:
    """The row `data` describes; `model` is the batch's (the judgement's model when the
    completion names none). None (logged) when `data` names no custom id."""
    custom_id = data.get("custom_id") if isinstance(data, Mapping) else None
    if not isinstance(custom_id, str):
        logger.warning("%s batch result row without a custom_id; skipped", provider.value)
        return None
    response = data.get("response")
    if isinstance(response, Mapping):
        status = response.get("status_code")
        body = response.get("body")
        if status == 200:
            return _answered(provider, custom_id, body, model)
        if isinstance(status, int):
            return BatchRow(
                custom_id, RowOutcome.ERRORED, error=_status_error(provider, status, body)
            )
    error = data.get("error")
    code = error.get("code") if isinstance(error, Mapping) else None
    if code in NOT_RUN_CODES:
        return BatchRow(custom_id, RowOutcome.NOT_RUN)
    message = error.get("message") if isinstance(error, Mapping) else None
    detail = f"{provider.value} batch row failed: {code or 'no answer'}: {message or ''}"
    return BatchRow(
        custom_id,
        RowOutcome.ERRORED,
        error=ProviderUnavailableError(provider, detail[:500], reason="batch_row_error"),
    )


def _answered(provider: LLMProviderType, custom_id: str, body: Any, model: str) -> BatchRow:
    try:
        completion = ChatCompletion.model_validate(body)
        judgement = judgement_from_completion(provider, completion, model)
    except InvalidProviderResponseError as exc:
        return BatchRow(custom_id, RowOutcome.ERRORED, error=_cut_off(provider, exc) or exc)
    except ProviderError as exc:  # an error OpenRouter embeds in a 200 answer
        return BatchRow(custom_id, RowOutcome.ERRORED, error=exc)
    except Exception as exc:  # a 200 body that is not a chat completion
        return BatchRow(custom_id, RowOutcome.ERRORED, error=not_a_completion(provider, exc))
    return BatchRow(custom_id, RowOutcome.SUCCEEDED, judgement=judgement)


def _cut_off(
    provider: LLMProviderType, exc: InvalidProviderResponseError
) -> InvalidProviderResponseError | None:
    """The realtime path's `MaxTokensTooLowError`, as the provider error a row carries."""
    if exc.details.get("finish_reason") != "length":
        return None
    return InvalidProviderResponseError(
        provider,
        f"{provider.value} stopped at the token limit before its judgement was complete; "
        "raise llm_config_overrides.max_tokens_override",
        details={"stop_reason": "length", "field": "llm_config_overrides.max_tokens_override"},
    )


def _status_error(provider: LLMProviderType, status: int, body: Any) -> ProviderError:
    error = body.get("error") if isinstance(body, Mapping) else None
    message = error.get("message") if isinstance(error, Mapping) else None
    return error_for_status(provider, status, message if isinstance(message, str) else "")
