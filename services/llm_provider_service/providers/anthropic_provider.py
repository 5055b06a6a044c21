"""Anthropic (Claude) adapter: one fresh Messages API call per judgement, answered as a tool call.

Documented choices:

- Structured output is a forced call of the `comparison_result` tool (`tool_choice` of type
  `tool`), whose `input_schema` is `JUDGEMENT_SCHEMA`; the judgement is read from the
  `tool_use` block and checked strictly by `parse_judgement`.
- Thinking: Anthropic refuses extended thinking together with a forced tool choice. When
  `reasoning_effort` is low/medium/high, thinking is enabled with a budget of
  1024/4096/16384 tokens, `tool_choice` becomes `auto`, and the system prompt gains an
  instruction to answer only by calling the tool; a reply without the tool call is an
  invalid response (re-asked like any other). Thinking also requires temperature 1, so a
  temperature override is then left out (debug log). `reasoning_effort` "none" or unset
  means no thinking and the forced tool.
- Token limits: thinking tokens count toward `max_tokens`. Without an override,
  `max_tokens` is 1024 plus the thinking budget; `max_tokens_override` is the whole cap, and
  the budget shrinks to leave 256 tokens for the answer; a budget that would fall below
  Anthropic's minimum of 1024 turns thinking off (forced tool, debug log).
- anthropic 2.12's `messages.create` has no `temperature` parameter: it is sent through
  `extra_body`. `output_verbosity` has no Anthropic equivalent and is ignored (debug log).
- Prompt caching (`prompt_caching=True`, ANTHROPIC_PROMPT_CACHING): the prompt is sent as
  text blocks (system, then the user message's content), and the cacheable prefix of the
  prompt (`ComparisonPrompt.cached_prefix`: the leading blocks the caller marked
  cacheable) gets a `cache_control` breakpoint, with its TTL, on the last block of each run
  of one TTL: at most 4, Anthropic's limit (the caller's TTLs come longest first, which
  Anthropic requires). A prompt with nothing marked has its system prompt cached for 5
  minutes. Only input tokens are cached; every call still gets a fresh answer.
- Token accounting: `prompt_tokens` = `input_tokens` + `cache_read_input_tokens` +
  `cache_creation_input_tokens` (every prompt token the model read, whatever its price;
  Anthropic's `input_tokens` alone excludes both), `cached_prompt_tokens` = cache reads,
  `cache_write_tokens` = cache writes (`cache_write_1h_tokens` those at the 1-hour TTL),
  `completion_tokens` = `output_tokens` (thinking included), `total` = their sum. The usage
  of re-asked answers is added in, since they were billed too.
- `Judgement.model` is the model the vendor reports (the message's `model`),
  else the one asked for.
- Retries: the SDK's hidden retries must be off (the composition root builds the client with
  `max_retries=0`), so each attempt is exactly one HTTP request; outages are retried by the
  queue and counted by the breaker. Only an answer outside the schema (or unparseable, or
  missing) is re-asked, with a fresh call, at most `invalid_response_reasks` times.
- Every call runs under the provider's `CallSlots(max_concurrency)` and an overall deadline
  of `timeout_seconds` plus one second (so that the SDK's own timeout fires first); the wait
  for a slot counts toward that deadline, and the SDK gets `timeout_seconds` or, when the
  wait ate into the grace second, what is left.
- Stopping at the token limit (`stop_reason` "max_tokens") without a readable judgement is
  `MaxTokensTooLowError` (422, the caller's own limit), never re-asked.
- The answer is read in one place, `judgement_from_message` (with `token_usage`), under
  `ask_until_valid`'s guard: a 200 body of any other shape is `InvalidProviderResponseError`.

The request is built in `anthropic_request.py` and the answer read in `anthropic_answer.py`;
this module makes the call.
"""

from __future__ import annotations

import asyncio

import anthropic
from anthropic.types import Message

from common_core.api_models import LLMConfigOverrides
from common_core.enums import LLMProviderType
from services.llm_provider_service.models import ComparisonPrompt, Judgement
from services.llm_provider_service.providers.anthropic_answer import (
    judgement_from_message,
    token_usage,
    translate_error,
)
from services.llm_provider_service.providers.anthropic_request import (
    MessageRequest,
    create_kwargs,
    plan_request,
)
from services.llm_provider_service.providers.call_slots import CallSlots, call_timeout
from services.llm_provider_service.providers.judgement import ask_until_valid
from services.llm_provider_service.settings import ProviderSettings

_PROVIDER = LLMProviderType.ANTHROPIC
_DEADLINE_GRACE_SECONDS = 1.0


class AnthropicProvider:
    """An `LLMProvider` for Anthropic's Messages API (see the module docstring)."""

    def __init__(
        self, client: anthropic.AsyncAnthropic, config: ProviderSettings, *, prompt_caching: bool
    ) -> None:
        self._client = client
        self._config = config
        self._prompt_caching = prompt_caching
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
        call = plan_request(
            prompt,
            overrides,
            default_model=self._config.default_model,
            prompt_caching=self._prompt_caching,
        )
        return await ask_until_valid(
            _PROVIDER,
            self._config.invalid_response_reasks,
            lambda: self._send(call),
            token_usage,
            lambda message, spent: judgement_from_message(message, call, spent),
        )

    async def _send(self, call: MessageRequest) -> Message:
        """Exactly one HTTP request, with every failure translated to a `ProviderError`."""
        timeout = self._config.timeout_seconds
        try:
            async with (
                self._slots.slot(timeout + _DEADLINE_GRACE_SECONDS) as left,
                asyncio.timeout(left),
            ):
                message: Message = await self._client.messages.create(
                    **create_kwargs(call), timeout=call_timeout(timeout, left)
                )
                return message
        except Exception as exc:
            raise translate_error(exc, timeout) from exc
