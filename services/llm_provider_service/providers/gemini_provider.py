"""Google Gemini adapter: one fresh generateContent call per judgement, answered as schema JSON.

Documented choices:

- Structured output: `response_mime_type="application/json"` with
  `response_json_schema=JUDGEMENT_SCHEMA` (supported by google-genai 3.x); the answer text
  (thought parts excluded) is checked strictly by `parse_judgement`.
- Thinking: `reasoning_effort` low/medium/high sets `thinking_config.thinking_budget` to
  1024/4096/16384. "none" or unset sets it to 0 on models that can switch thinking off
  (the `gemini-2.5-flash` family); other models always think, so they get the smallest
  budget, 1024 (debug log), which keeps the cost bounded and predictable.
- Token limits: thoughts count toward `max_output_tokens`. Without an override it is 1024
  plus the thinking budget; `max_tokens_override` is the whole cap, and the budget shrinks
  to leave 256 tokens for the answer; a budget shrunk below 512 (Flash-Lite's minimum)
  becomes 0 where thinking can be switched off, and never goes below 128 (2.5 Pro's
  minimum) where it cannot.
- `output_verbosity` has no Gemini equivalent and is ignored (debug log).
- Token accounting from `usage_metadata`: `prompt_tokens` = `prompt_token_count` (which
  already includes cached tokens), `cached_prompt_tokens` = `cached_content_token_count`,
  `completion_tokens` = `candidates_token_count` + `thoughts_token_count` (both billed as
  output), `total_tokens` = `total_token_count`. The usage of re-asked answers is added in.
  `provider_request_id` is the response's `response_id`.
- `Judgement.model` is the model the vendor reports (the response's `model_version`),
  else the one asked for.
- Retries: the SDK must not retry (the composition root gives the client no
  `retry_options`, and each call here disables automatic function calling and automatic
  continuation), so each attempt is exactly one HTTP request; outages are retried by the
  queue. Only an answer outside the schema (or unparseable, or missing) is re-asked, with a
  fresh call, at most `invalid_response_reasks` times.
- Every call runs under the provider's `CallSlots(max_concurrency)`, with the SDK timeout
  set per request (google-genai takes milliseconds) and an overall deadline one second
  later; the wait for a slot counts toward that deadline (the SDK timeout shrinks when the
  wait ate into the grace second).
- Stopping at the token limit (`finish_reason` MAX_TOKENS) without a readable judgement is
  `MaxTokensTooLowError` (422, the caller's own limit), never re-asked.
- The answer is read in one place, `_judgement` (with `_usage`), under `ask_until_valid`'s
  guard: a 200 body of any other shape is `InvalidProviderResponseError`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

import httpx
import httpx2
import pydantic
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from common_core.api_models import LLMConfigOverrides, TokenUsage
from common_core.enums import LLMProviderType, ReasoningEffort
from services.llm_provider_service.errors import (
    InvalidProviderResponseError,
    MaxTokensTooLowError,
    ProviderError,
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
    ask_until_valid,
    parse_judgement,
)
from services.llm_provider_service.settings import ProviderSettings

logger = logging.getLogger(__name__)

_PROVIDER = LLMProviderType.GOOGLE
DEFAULT_MAX_TOKENS = 1024
ANSWER_RESERVE_TOKENS = 256
ALWAYS_THINKING_MIN_BUDGET = 128
MIN_SWITCHABLE_BUDGET = 512
THINKING_BUDGETS: dict[ReasoningEffort, int] = {
    ReasoningEffort.LOW: 1024,
    ReasoningEffort.MEDIUM: 4096,
    ReasoningEffort.HIGH: 16384,
}
_CAN_DISABLE_THINKING = ("gemini-2.5-flash",)
_DEADLINE_GRACE_SECONDS = 1.0
_RETRY_DELAY = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


class GeminiProvider:
    """An `LLMProvider` for the Gemini API's generateContent (see the module docstring)."""

    def __init__(self, client: genai.Client, config: ProviderSettings) -> None:
        self._client = client
        self._config = config
        self._slots = CallSlots(_PROVIDER, config.max_concurrency)

    @property
    def provider(self) -> LLMProviderType:
        return _PROVIDER

    @property
    def default_model(self) -> str:
        return self._config.default_model

    async def compare(self, prompt: ComparisonPrompt, overrides: LLMConfigOverrides) -> Judgement:
        """One fresh judgement; re-asks an invalid answer at most `invalid_response_reasks`
        times and raises only `ProviderError`s."""
        model = overrides.model_override or self._config.default_model
        config = self._generation_config(prompt, overrides, model)
        return await ask_until_valid(
            _PROVIDER,
            self._config.invalid_response_reasks,
            lambda: self._send(model, prompt.user_prompt, config),
            _usage,
            lambda response, spent: _judgement(response, model, spent, config.max_output_tokens),
        )

    def _generation_config(
        self, prompt: ComparisonPrompt, overrides: LLMConfigOverrides, model: str
    ) -> types.GenerateContentConfig:
        if overrides.output_verbosity is not None:
            logger.debug("gemini has no output verbosity; ignoring output_verbosity")
        max_tokens, budget = plan_tokens(overrides, model)
        timeout_ms = max(1, round(self._config.timeout_seconds * 1000))
        return types.GenerateContentConfig(
            http_options=types.HttpOptions(timeout=timeout_ms),
            system_instruction=prompt.system_prompt,
            temperature=overrides.temperature_override,
            max_output_tokens=max_tokens,
            response_mime_type="application/json",
            response_json_schema=JUDGEMENT_SCHEMA,
            thinking_config=types.ThinkingConfig(thinking_budget=budget),
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
            automatic_continuation=False,
        )

    async def _send(
        self, model: str, user_prompt: str, config: types.GenerateContentConfig
    ) -> types.GenerateContentResponse:
        """Exactly one HTTP request, with every failure translated to a `ProviderError`."""
        timeout = self._config.timeout_seconds
        try:
            async with (
                self._slots.slot(timeout + _DEADLINE_GRACE_SECONDS) as left,
                asyncio.timeout(left),
            ):
                if left < timeout:  # the wait for a slot ate into the grace second
                    ms = max(1, round(call_timeout(timeout, left) * 1000))
                    config = config.model_copy(
                        update={"http_options": types.HttpOptions(timeout=ms)}
                    )
                return await self._client.aio.models.generate_content(
                    model=model, contents=user_prompt, config=config
                )
        except Exception as exc:
            raise translate_error(exc, timeout) from exc


def can_disable_thinking(model: str) -> bool:
    name = model.removeprefix("models/")
    return name.startswith(_CAN_DISABLE_THINKING)


def plan_tokens(overrides: LLMConfigOverrides, model: str) -> tuple[int, int]:
    """`max_output_tokens` and the thinking budget (0: no thinking) for these overrides."""
    effort = overrides.reasoning_effort
    budget = THINKING_BUDGETS.get(effort) if effort is not None else None
    switchable = can_disable_thinking(model)
    if budget is None:
        budget = 0 if switchable else THINKING_BUDGETS[ReasoningEffort.LOW]
        if not switchable:
            logger.debug("%s cannot switch thinking off; using a %d token budget", model, budget)
    cap = overrides.max_tokens_override
    if cap is None:
        return DEFAULT_MAX_TOKENS + budget, budget
    room = max(0, cap - ANSWER_RESERVE_TOKENS)
    if budget > room:
        if switchable:
            budget = room if room >= MIN_SWITCHABLE_BUDGET else 0
        else:
            budget = max(room, ALWAYS_THINKING_MIN_BUDGET)
    return cap, budget


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


def _judgement(
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


def _usage(response: types.GenerateContentResponse) -> TokenUsage:
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
