"""What the OpenAI and OpenRouter adapters share: one chat-completions call, read strictly.

Subclasses decide what to send (`_build_request`); this module makes the call through the
`openai` SDK under the concurrency limit (`CallSlots`) and an overall deadline of
`timeout_seconds` plus one second, which the wait for a slot counts toward; translates every
SDK failure into the service's errors (`raise ... from`), and reads the completion into a
`Judgement` in one place (`_judge`, under `ask_until_valid`'s guard: a 200 body of another shape is
`InvalidProviderResponseError`), re-asking (a fresh call) at most `invalid_response_reasks`
times for an answer outside the schema. An answer cut off at the token limit
(`finish_reason` "length") is `MaxTokensTooLowError` (422, the caller's own limit). The
client has `max_retries=0` (`build_client`): retrying is the queue's and the breaker's
decision.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

import openai
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam
from openai.types.chat.completion_create_params import ResponseFormat

from common_core.api_models import LLMConfigOverrides, TokenUsage
from common_core.enums import LLMProviderType, OutputVerbosity, ReasoningEffort
from services.llm_provider_service.errors import (
    InvalidProviderResponseError,
    MaxTokensTooLowError,
    ProviderError,
    ProviderNotConfiguredError,
)
from services.llm_provider_service.models import ComparisonPrompt, Judgement
from services.llm_provider_service.providers.call_slots import CallSlots, call_timeout
from services.llm_provider_service.providers.http_errors import (
    connection_error,
    error_for_status,
    retry_after_seconds,
    timeout_error,
)
from services.llm_provider_service.providers.judgement import (
    JUDGEMENT_SCHEMA,
    TOOL_NAME,
    ask_until_valid,
    parse_judgement,
)
from services.llm_provider_service.settings import ProviderSettings

logger = logging.getLogger(__name__)

OpenAIEffort = Literal["none", "minimal", "low", "medium", "high"]
Verbosity = Literal["low", "medium", "high"]

_DEADLINE_GRACE_SECONDS = 1.0
"""The overall deadline of an attempt (slot wait included) is the timeout plus this."""
DEFAULT_MAX_TOKENS = 1024
"""Output budget when the caller sets none: a judgement needs about 200 tokens."""
DEFAULT_REASONING_MAX_TOKENS = 8192
"""Budget for reasoning models, whose hidden reasoning tokens count against the same limit."""

EFFORTS: Mapping[ReasoningEffort, OpenAIEffort] = {
    ReasoningEffort.NONE: "none",
    ReasoningEffort.LOW: "low",
    ReasoningEffort.MEDIUM: "medium",
    ReasoningEffort.HIGH: "high",
}
VERBOSITIES: Mapping[OutputVerbosity, Verbosity] = {
    OutputVerbosity.LOW: "low",
    OutputVerbosity.MEDIUM: "medium",
    OutputVerbosity.HIGH: "high",
}

_T = TypeVar("_T")


def json_schema_format() -> ResponseFormat:
    """Structured outputs: the judgement schema, enforced by the vendor (`strict`)."""
    return {
        "type": "json_schema",
        "json_schema": {"name": TOOL_NAME, "schema": JUDGEMENT_SCHEMA, "strict": True},
    }


def json_object_format() -> ResponseFormat:
    """JSON mode: any JSON object; the schema goes into the prompt and is checked here."""
    return {"type": "json_object"}


def chat_messages(system_prompt: str, user_prompt: str) -> list[ChatCompletionMessageParam]:
    return [
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": user_prompt},
    ]


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat-completions request; None fields are left out of the body."""

    model: str
    messages: list[ChatCompletionMessageParam]
    response_format: ResponseFormat
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    reasoning_effort: OpenAIEffort | None = None
    verbosity: Verbosity | None = None
    prompt_cache_key: str | None = None
    extra_body: dict[str, Any] | None = None


def build_client(
    config: ProviderSettings,
    *,
    default_base_url: str | None = None,
    default_headers: Mapping[str, str] | None = None,
) -> openai.AsyncOpenAI:
    """An SDK client for `config`: its key, base URL and timeout, and no hidden retries.

    Raises `ProviderNotConfiguredError` without an API key.
    """
    if config.api_key is None:
        raise ProviderNotConfiguredError(config.provider, f"{config.provider.value} has no API key")
    return openai.AsyncOpenAI(
        api_key=config.api_key.get_secret_value(),
        base_url=config.base_url or default_base_url,
        timeout=config.timeout_seconds,
        max_retries=0,
        default_headers=dict(default_headers) if default_headers else None,
    )


class OpenAICompatibleProvider(ABC):
    """An `LLMProvider` over an OpenAI-compatible chat-completions endpoint.

    `client` must have `max_retries=0` (the composition root builds it so, e.g. with
    `build_client`): hidden SDK retries would hide outages from the circuit breaker and
    multiply calls. Calls run under `CallSlots(config.max_concurrency)`.
    """

    _provider: ClassVar[LLMProviderType]

    def __init__(self, client: openai.AsyncOpenAI, config: ProviderSettings) -> None:
        if client.max_retries:
            logger.warning(
                "%s client has max_retries=%d; the service expects 0 (one request per attempt)",
                self._provider.value,
                client.max_retries,
            )
        self._client = client
        self._config = config
        self._slots = CallSlots(self._provider, config.max_concurrency)

    @property
    def provider(self) -> LLMProviderType:
        return self._provider

    @property
    def default_model(self) -> str:
        return self._config.default_model

    async def compare(self, prompt: ComparisonPrompt, overrides: LLMConfigOverrides) -> Judgement:
        """One fresh call; up to `invalid_response_reasks` more for answers outside the schema.

        Raises only `ProviderError`s. The judgement's `model` is the one the vendor says
        answered (it may name a dated snapshot or the routed model), else the requested one.
        """
        request = self._build_request(prompt, overrides)
        return await ask_until_valid(
            self._provider,
            self._config.invalid_response_reasks,
            lambda: self._attempt(request),
            _usage_or_zero,
            lambda completion, spent: self._judge(completion, request, spent),
        )

    @abstractmethod
    def _build_request(
        self, prompt: ComparisonPrompt, overrides: LLMConfigOverrides
    ) -> ChatRequest:
        """The request for this prompt and these overrides; unsupported overrides are left
        out with a debug log, so that they never cause an upstream 400."""

    async def _attempt(self, request: ChatRequest) -> ChatCompletion:
        timeout = self._config.timeout_seconds
        try:
            async with (
                self._slots.slot(timeout + _DEADLINE_GRACE_SECONDS) as left,
                asyncio.timeout(left),
            ):
                return await self._send(request, seconds=call_timeout(timeout, left))
        except TimeoutError as exc:  # the overall deadline, past the SDK's own timeout
            raise timeout_error(self._provider, timeout) from exc

    def _judge(
        self, completion: ChatCompletion, request: ChatRequest, spent: TokenUsage
    ) -> Judgement:
        """The judgement, with the tokens of every attempt (re-asks are billed too)."""
        try:
            judgement = judgement_from_completion(self._provider, completion, request.model)
        except InvalidProviderResponseError as exc:
            if exc.details.get("finish_reason") == "length":
                raise MaxTokensTooLowError(
                    self._provider,
                    max_tokens=request.max_completion_tokens or request.max_tokens,
                    stop_reason="length",
                    model=request.model,
                ) from exc
            raise
        except ProviderError:
            raise
        except Exception as exc:  # a 200 body that is JSON but not a chat completion
            raise _not_a_completion(self._provider, exc) from exc
        return judgement.model_copy(update={"token_usage": spent})

    async def _send(self, request: ChatRequest, *, seconds: float) -> ChatCompletion:
        provider = self._provider
        try:
            return await self._client.chat.completions.create(
                model=request.model,
                messages=request.messages,
                response_format=request.response_format,
                max_tokens=_given(request.max_tokens),
                max_completion_tokens=_given(request.max_completion_tokens),
                temperature=_given(request.temperature),
                reasoning_effort=_given(request.reasoning_effort),
                verbosity=_given(request.verbosity),
                prompt_cache_key=_given(request.prompt_cache_key),
                extra_body=request.extra_body,
                timeout=seconds,
            )
        except openai.APITimeoutError as exc:
            raise timeout_error(provider, self._config.timeout_seconds) from exc
        except openai.APIConnectionError as exc:
            raise connection_error(provider, f"{exc.message} ({exc.__cause__!r})") from exc
        except openai.APIStatusError as exc:
            raise status_error(provider, exc) from exc
        except (openai.APIResponseValidationError, ValueError) as exc:  # JSONDecodeError too
            raise _not_a_completion(provider, exc) from exc
        except Exception as exc:  # the contract: nothing but ProviderError leaves `compare`
            logger.exception("unexpected error calling %s", provider.value)
            raise InvalidProviderResponseError(
                provider, f"{provider.value} call failed unexpectedly: {type(exc).__name__}"
            ) from exc


def _given(value: _T | None) -> _T | openai.Omit:
    return openai.omit if value is None else value


def _not_a_completion(provider: LLMProviderType, exc: Exception) -> InvalidProviderResponseError:
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


def _usage_or_zero(completion: ChatCompletion) -> TokenUsage:
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


def prompt_cache_key(prompt: ComparisonPrompt) -> str | None:
    """A key naming the prompt's cacheable prefix (the shared rubric and instructions), so
    that the vendor routes requests that share it to the same cache; None without one.
    OpenAI caches a prompt's longest seen prefix by itself: the key only improves the hit
    rate. Only the prompt's input tokens are cached; every answer is fresh."""
    prefix = prompt.cached_prefix
    if not prefix:
        return None
    digest = hashlib.sha256("\x00".join(part.text for part in prefix).encode())
    return f"llmps-{digest.hexdigest()[:32]}"
