"""What `AnthropicProvider` reads: the judgement and token usage of a Messages API answer,
and the service error for whatever the SDK raised."""

from __future__ import annotations

import json
import logging

import anthropic
import httpx2
from anthropic.types import Message, ToolUseBlock

from common_core.api_models import TokenUsage
from common_core.enums import LLMProviderType
from services.llm_provider_service.errors import (
    InvalidProviderResponseError,
    MaxTokensTooLowError,
    ProviderError,
)
from services.llm_provider_service.models import Judgement
from services.llm_provider_service.providers.anthropic_request import MessageRequest
from services.llm_provider_service.providers.http_errors import (
    connection_error,
    error_for_status,
    retry_after_seconds,
    timeout_error,
)
from services.llm_provider_service.providers.judgement import TOOL_NAME, parse_judgement

logger = logging.getLogger(__name__)

_PROVIDER = LLMProviderType.ANTHROPIC


def translate_error(exc: Exception, timeout: float) -> ProviderError:
    """The service error for whatever the SDK (or the deadline) raised."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, anthropic.APIStatusError):
        message = exc.api_message or exc.message
        headers = exc.response.headers
        return error_for_status(
            _PROVIDER, exc.status_code, message, retry_after=retry_after_seconds(headers)
        )
    if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException | TimeoutError):
        return timeout_error(_PROVIDER, timeout)
    if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError | OSError):
        return connection_error(_PROVIDER, str(exc) or type(exc).__name__)
    if isinstance(exc, anthropic.APIResponseValidationError | json.JSONDecodeError):
        return InvalidProviderResponseError(
            _PROVIDER, f"anthropic returned a body that is not a message: {type(exc).__name__}"
        )
    logger.warning("unexpected error from the anthropic SDK", exc_info=exc)
    return InvalidProviderResponseError(
        _PROVIDER, f"anthropic call failed unexpectedly: {type(exc).__name__}: {exc}"[:500]
    )


def judgement_from_message(message: Message, call: MessageRequest, usage: TokenUsage) -> Judgement:
    """The judgement in a 200 answer. The SDK builds `Message` without validating it, so
    every field may be missing or of any type: `ask_until_valid` turns what this raises
    beyond `ServiceError`s into `InvalidProviderResponseError`."""
    return read_judgement(message, usage, model=call.model, max_tokens=call.max_tokens)


def read_judgement(
    message: Message, usage: TokenUsage, *, model: str, max_tokens: int | None
) -> Judgement:
    """`judgement_from_message` for a message whose request is known only by its `model`
    (the fallback when the message names none) and `max_tokens` (None: unknown), as a
    batch result row is."""
    reported = getattr(message, "model", None)
    model = reported if isinstance(reported, str) and reported else model
    stop_reason = getattr(message, "stop_reason", None)
    content = getattr(message, "content", None)
    blocks = content if isinstance(content, list) else []
    tool_use = next(
        (b for b in blocks if isinstance(b, ToolUseBlock) and b.name == TOOL_NAME),
        None,
    )
    try:
        if tool_use is None:
            raise InvalidProviderResponseError(
                _PROVIDER,
                f"anthropic did not call the {TOOL_NAME} tool (stop_reason={stop_reason})",
                details={"model": model},
            )
        request_id = getattr(message, "id", None)
        return parse_judgement(
            _PROVIDER,
            tool_use.input if isinstance(tool_use.input, dict) else None,
            model=model,
            usage=usage,
            provider_request_id=request_id if isinstance(request_id, str) else None,
        )
    except InvalidProviderResponseError as exc:
        if stop_reason == "max_tokens":
            raise MaxTokensTooLowError(
                _PROVIDER, max_tokens=max_tokens, stop_reason="max_tokens", model=model
            ) from exc
        raise


def token_usage(message: Message) -> TokenUsage:
    """Every prompt token read (cache reads and writes included), as the module docstring of
    `anthropic_provider.py` counts them."""
    usage = message.usage
    cache_read = usage.cache_read_input_tokens or 0
    written = usage.cache_creation_input_tokens or 0
    by_ttl = usage.cache_creation
    written_1h = (by_ttl.ephemeral_1h_input_tokens or 0) if by_ttl is not None else 0
    prompt = (usage.input_tokens or 0) + cache_read + written
    return TokenUsage(
        prompt_tokens=prompt,
        completion_tokens=usage.output_tokens or 0,
        total_tokens=prompt + (usage.output_tokens or 0),
        cached_prompt_tokens=cache_read,
        cache_write_tokens=written,
        cache_write_1h_tokens=min(written_1h, written),
    )
