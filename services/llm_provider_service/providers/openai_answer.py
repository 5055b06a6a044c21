"""What the OpenAI-compatible adapters read: a chat completion's judgement and token usage,
and the service error for an HTTP error status or for an error embedded in a 200 answer."""

from __future__ import annotations

import json
import logging
from typing import cast

import httpx2
import openai
from openai.types.chat import ChatCompletion
from pydantic import ValidationError

from common_core.api_models import TokenUsage
from common_core.enums import LLMProviderType
from services.llm_provider_service.errors import InvalidProviderResponseError, ProviderError
from services.llm_provider_service.models import Judgement
from services.llm_provider_service.providers.http_errors import (
    error_for_status,
    retry_after_seconds,
)
from services.llm_provider_service.providers.judgement import parse_judgement

logger = logging.getLogger(__name__)


def read_completion(client: openai.AsyncOpenAI, response: httpx2.Response) -> ChatCompletion:
    """The completion in a 2xx answer, as `chat.completions.create` returns it.

    A well-formed completion (nearly every answer) is read in one validating pass in
    pydantic-core, about 10 µs; the SDK builds its model field by field in Python, about
    150 µs a call. Anything else goes the SDK's own way, so that what the adapter sees for
    an odd body (and the error it then reports) is what `create` gave: a body that is not
    JSON raises `ValueError`, and one of another content type that is not JSON comes back
    as its text, as from the SDK.
    """
    completion = _completion(client, response)
    if isinstance(completion, ChatCompletion):
        completion._request_id = response.headers.get("x-request-id")  # as the SDK sets it
    return completion


def _completion(client: openai.AsyncOpenAI, response: httpx2.Response) -> ChatCompletion:
    content_type = response.headers.get("content-type", "*").split(";")[0]
    if content_type.endswith("json"):
        try:
            return ChatCompletion.model_validate_json(response.content)
        except ValidationError:
            data = response.json()
    else:
        try:
            data = response.json()
        except Exception:
            return cast(ChatCompletion, response.text)
    return client._process_response_data(data=data, cast_to=ChatCompletion, response=response)


def not_a_completion(provider: LLMProviderType, exc: Exception) -> InvalidProviderResponseError:
    return InvalidProviderResponseError(
        provider,
        f"{provider.value} answered with a body that is not a chat completion "
        f"({type(exc).__name__})",
    )


def status_error(provider: LLMProviderType, exc: openai.APIStatusError) -> ProviderError:
    """The service error for an HTTP error status, with the vendor's own message."""
    body = exc.body
    message = body.get("message") if isinstance(body, dict) else None
    return error_for_status(
        provider,
        exc.status_code,
        message if isinstance(message, str) else exc.message,
        retry_after=retry_after_seconds(exc.response.headers),
    )


def judgement_from_completion(
    provider: LLMProviderType, completion: ChatCompletion, requested_model: str
) -> Judgement:
    """The completion's judgement, or `InvalidProviderResponseError` (or, for an error that
    OpenRouter embeds in a 200 answer, the error its code stands for)."""
    choices = completion.choices
    if not choices:
        raise _embedded_error(provider, completion)
    choice = choices[0]
    message = choice.message
    if message.refusal:
        raise InvalidProviderResponseError(
            provider,
            f"{provider.value} refused to judge: {message.refusal}"[:500],
            details={"refusal": True},
        )
    if choice.finish_reason in ("length", "content_filter"):
        raise InvalidProviderResponseError(
            provider,
            f"{provider.value} stopped before the judgement was complete "
            f"(finish_reason={choice.finish_reason})",
            details={"finish_reason": choice.finish_reason},
        )
    model = completion.model if isinstance(completion.model, str) else ""
    return parse_judgement(
        provider,
        message.content,
        model=model or requested_model,
        usage=token_usage(completion),
        provider_request_id=completion.id if isinstance(completion.id, str) else None,
    )


def _embedded_error(provider: LLMProviderType, completion: ChatCompletion) -> ProviderError:
    error = (completion.model_extra or {}).get("error")
    if isinstance(error, dict):
        code, text = error.get("code"), error.get("message")
        detail = text if isinstance(text, str) else json.dumps(error)[:300]
        if isinstance(code, int) and 400 <= code < 600:
            return error_for_status(provider, code, detail)
        return InvalidProviderResponseError(provider, f"{provider.value} error: {detail}"[:500])
    return InvalidProviderResponseError(provider, f"{provider.value} returned no choices")


def usage_or_zero(completion: ChatCompletion) -> TokenUsage:
    """Usage of a response that may not even be a well-formed completion."""
    try:
        return token_usage(completion)
    except Exception:  # counted as zero; the judge step reports what is wrong with it
        return TokenUsage()


def token_usage(completion: ChatCompletion) -> TokenUsage:
    """Token counts, with prompt-cache hits as `cached_prompt_tokens` and writes as
    `cache_write_tokens` (charged from the GPT-5.6 family on); zeros when absent."""
    usage = completion.usage
    if usage is None:
        logger.debug("completion %s carries no usage", completion.id)
        return TokenUsage()
    details = usage.prompt_tokens_details
    cached = details.cached_tokens if details is not None else None
    written = details.cache_write_tokens if details is not None else None
    return TokenUsage(
        prompt_tokens=usage.prompt_tokens or 0,
        completion_tokens=usage.completion_tokens or 0,
        total_tokens=usage.total_tokens or 0,
        cached_prompt_tokens=cached or 0,
        cache_write_tokens=written or 0,
    )
