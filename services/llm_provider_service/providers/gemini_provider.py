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
- The request is built by `gemini_request.generation_config`, and the answer read by
  `gemini_answer.read_judgement` (with `read_usage`) under `ask_until_valid`'s guard (a 200
  body of any other shape is `InvalidProviderResponseError`): the same two functions build
  and read each entry of a Batch API job (`gemini_batch.py`).
- The flex lane's variant (`service_tier=ServiceTier.FLEX`, its own `timeout_seconds`) is
  this class with those two constructor options; a flex refusal is a 429
  RESOURCE_EXHAUSTED, retryable like any other.
"""

from __future__ import annotations

import asyncio

from google import genai
from google.genai import types

from common_core.api_models import LLMConfigOverrides
from common_core.enums import LLMProviderType
from services.llm_provider_service.models import ComparisonPrompt, Judgement
from services.llm_provider_service.providers.call_slots import CallSlots, call_timeout
from services.llm_provider_service.providers.gemini_answer import (
    read_judgement,
    read_usage,
    translate_error,
)
from services.llm_provider_service.providers.gemini_request import generation_config
from services.llm_provider_service.providers.judgement import ask_until_valid
from services.llm_provider_service.settings import ProviderSettings

_PROVIDER = LLMProviderType.GOOGLE
_DEADLINE_GRACE_SECONDS = 1.0


class GeminiProvider:
    """An `LLMProvider` for the Gemini API's generateContent (see the module docstring)."""

    def __init__(
        self,
        client: genai.Client,
        config: ProviderSettings,
        *,
        service_tier: types.ServiceTier | None = None,
        timeout_seconds: float | None = None,
    ) -> None:
        """`service_tier` goes on every request (the flex lane's `ServiceTier.FLEX`), and
        `timeout_seconds`, when given, replaces the provider's `timeout_seconds` (flex
        answers are slow)."""
        self._client = client
        self._config = config
        self._service_tier = service_tier
        self._timeout = timeout_seconds if timeout_seconds is not None else config.timeout_seconds
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
        config = generation_config(
            prompt,
            overrides,
            model,
            timeout_seconds=self._timeout,
            service_tier=self._service_tier,
        )
        return await ask_until_valid(
            _PROVIDER,
            self._config.invalid_response_reasks,
            lambda: self._send(model, prompt.user_prompt, config),
            read_usage,
            lambda response, spent: read_judgement(
                response, model, spent, config.max_output_tokens
            ),
        )

    async def _send(
        self, model: str, user_prompt: str, config: types.GenerateContentConfig
    ) -> types.GenerateContentResponse:
        """Exactly one HTTP request, with every failure translated to a `ProviderError`."""
        timeout = self._timeout
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
