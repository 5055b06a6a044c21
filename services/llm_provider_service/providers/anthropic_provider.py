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
- The answer is read in one place, `_judgement` (with `_usage`), under `ask_until_valid`'s
  guard: a 200 body of any other shape is `InvalidProviderResponseError`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import anthropic
import httpx2
from anthropic.types import (
    Message,
    TextBlockParam,
    ThinkingConfigParam,
    ToolChoiceParam,
    ToolParam,
    ToolUseBlock,
)

from common_core.api_models import LLMConfigOverrides, TokenUsage
from common_core.enums import CacheTTL, LLMProviderType, ReasoningEffort
from services.llm_provider_service.errors import (
    InvalidProviderResponseError,
    MaxTokensTooLowError,
    ProviderError,
)
from services.llm_provider_service.models import ComparisonPrompt, Judgement, PromptPart
from services.llm_provider_service.providers.call_slots import CallSlots, call_timeout
from services.llm_provider_service.providers.http_errors import (
    connection_error,
    error_for_status,
    retry_after_seconds,
    timeout_error,
)
from services.llm_provider_service.providers.judgement import (
    JUDGEMENT_SCHEMA,
    TOOL_DESCRIPTION,
    TOOL_NAME,
    ask_until_valid,
    parse_judgement,
)
from services.llm_provider_service.settings import ProviderSettings

logger = logging.getLogger(__name__)

_PROVIDER = LLMProviderType.ANTHROPIC
DEFAULT_MAX_TOKENS = 1024
ANSWER_RESERVE_TOKENS = 256
MIN_THINKING_BUDGET = 1024
THINKING_BUDGETS: dict[ReasoningEffort, int] = {
    ReasoningEffort.LOW: 1024,
    ReasoningEffort.MEDIUM: 4096,
    ReasoningEffort.HIGH: 16384,
}
THINKING_INSTRUCTION = (
    f"Give your answer only by calling the `{TOOL_NAME}` tool, exactly once; "
    "do not answer in plain text."
)
_DEADLINE_GRACE_SECONDS = 1.0
_TOOL: ToolParam = {
    "name": TOOL_NAME,
    "description": TOOL_DESCRIPTION,
    "input_schema": JUDGEMENT_SCHEMA,
}


@dataclass(frozen=True, slots=True)
class _Call:
    """One request as it will be sent (identical on every re-ask)."""

    model: str
    max_tokens: int
    system: str | list[TextBlockParam]
    user_content: str | list[TextBlockParam]
    tool_choice: ToolChoiceParam
    thinking: ThinkingConfigParam | anthropic.Omit
    extra_body: dict[str, object] | None


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
        call = self._plan(prompt, overrides)
        return await ask_until_valid(
            _PROVIDER,
            self._config.invalid_response_reasks,
            lambda: self._send(call),
            _usage,
            lambda message, spent: _judgement(message, call, spent),
        )

    def _plan(self, prompt: ComparisonPrompt, overrides: LLMConfigOverrides) -> _Call:
        if overrides.output_verbosity is not None:
            logger.debug("anthropic has no output verbosity; ignoring output_verbosity")
        max_tokens, budget = plan_tokens(overrides)
        thinking: ThinkingConfigParam | anthropic.Omit = anthropic.omit
        tool_choice: ToolChoiceParam = {"type": "tool", "name": TOOL_NAME}
        extra_body: dict[str, object] | None = None
        temperature = overrides.temperature_override
        if budget is not None:
            thinking = {"type": "enabled", "budget_tokens": budget}
            tool_choice = {"type": "auto"}
            if temperature is not None:
                logger.debug("thinking requires temperature 1; ignoring temperature_override")
        elif temperature is not None:
            extra_body = {"temperature": temperature}
        system, user = self._content(prompt, thinking=budget is not None)
        return _Call(
            model=overrides.model_override or self._config.default_model,
            max_tokens=max_tokens,
            system=system,
            user_content=user,
            tool_choice=tool_choice,
            thinking=thinking,
            extra_body=extra_body,
        )

    def _content(
        self, prompt: ComparisonPrompt, *, thinking: bool
    ) -> tuple[str | list[TextBlockParam], str | list[TextBlockParam]]:
        """The system prompt and the user message's content: plain strings without prompt
        caching, else text blocks with the cache breakpoints (`cache_breakpoints`). The user
        message stays one string unless a part of it carries a breakpoint."""
        if not self._prompt_caching:
            plain = prompt.system_prompt
            return (f"{plain}\n\n{THINKING_INSTRUCTION}" if thinking else plain), (
                prompt.user_prompt
            )
        marks = cache_breakpoints(prompt)
        count = len(prompt.system_parts)
        system = _text_blocks(prompt.system_parts, [marks.get(i) for i in range(count)])
        if thinking:
            system.append({"type": "text", "text": THINKING_INSTRUCTION})
        user_marks = [marks.get(count + i) for i in range(len(prompt.user_parts))]
        if not any(user_marks):
            return system, prompt.user_prompt
        return system, _text_blocks(prompt.user_parts, user_marks)

    async def _send(self, call: _Call) -> Message:
        """Exactly one HTTP request, with every failure translated to a `ProviderError`."""
        timeout = self._config.timeout_seconds
        try:
            async with (
                self._slots.slot(timeout + _DEADLINE_GRACE_SECONDS) as left,
                asyncio.timeout(left),
            ):
                return await self._client.messages.create(
                    model=call.model,
                    max_tokens=call.max_tokens,
                    system=call.system,
                    messages=[{"role": "user", "content": call.user_content}],
                    tools=[_TOOL],
                    tool_choice=call.tool_choice,
                    thinking=call.thinking,
                    extra_body=call.extra_body,
                    timeout=call_timeout(timeout, left),
                )
        except Exception as exc:
            raise translate_error(exc, timeout) from exc


MAX_CACHE_BREAKPOINTS = 4  # Anthropic refuses more cache_control blocks in one request


def cache_breakpoints(prompt: ComparisonPrompt) -> dict[int, CacheTTL]:
    """Where `cache_control` goes, by the part's index in system-then-user order: the last
    part of each run of one TTL in the cacheable prefix (the last four at most), or, when
    nothing is marked cacheable, the last system part for 5 minutes."""
    prefix = prompt.cached_prefix
    if not prefix:
        return {len(prompt.system_parts) - 1: CacheTTL.FIVE_MINUTES}
    marks: dict[int, CacheTTL] = {}
    for index, part in enumerate(prefix):
        ttl = part.cache_ttl
        assert ttl is not None  # the prefix holds cacheable parts only
        following = prefix[index + 1].cache_ttl if index + 1 < len(prefix) else None
        if following != ttl:
            marks[index] = ttl
    return dict(list(marks.items())[-MAX_CACHE_BREAKPOINTS:])


def _text_blocks(
    parts: Sequence[PromptPart], ttls: Sequence[CacheTTL | None]
) -> list[TextBlockParam]:
    """One text block per part, each but the last ending in the blank line that joins parts
    in the plain text, so the model reads the same text either way; `cache_control` with its
    TTL where `ttls` has one."""
    blocks: list[TextBlockParam] = []
    for index, (part, ttl) in enumerate(zip(parts, ttls, strict=True)):
        last = index == len(parts) - 1
        block: TextBlockParam = {"type": "text", "text": part.text if last else f"{part.text}\n\n"}
        if ttl is not None:
            block["cache_control"] = {"type": "ephemeral", "ttl": ttl.value}
        blocks.append(block)
    return blocks


def plan_tokens(overrides: LLMConfigOverrides) -> tuple[int, int | None]:
    """`max_tokens` and the thinking budget (None: no thinking) for these overrides."""
    effort = overrides.reasoning_effort
    budget = THINKING_BUDGETS.get(effort) if effort is not None else None
    cap = overrides.max_tokens_override
    if budget is None:
        return cap or DEFAULT_MAX_TOKENS, None
    if cap is None:
        return budget + DEFAULT_MAX_TOKENS, budget
    budget = min(budget, cap - ANSWER_RESERVE_TOKENS)
    if budget < MIN_THINKING_BUDGET:
        logger.debug("max_tokens_override %d leaves no room for thinking; thinking off", cap)
        return cap, None
    return cap, budget


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


def _judgement(message: Message, call: _Call, usage: TokenUsage) -> Judgement:
    """The judgement in a 200 answer. The SDK builds `Message` without validating it, so
    every field may be missing or of any type: `ask_until_valid` turns what this raises
    beyond `ServiceError`s into `InvalidProviderResponseError`."""
    reported = getattr(message, "model", None)
    model = reported if isinstance(reported, str) and reported else call.model
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
                _PROVIDER, max_tokens=call.max_tokens, stop_reason="max_tokens", model=model
            ) from exc
        raise


def _usage(message: Message) -> TokenUsage:
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
