"""What `AnthropicProvider` sends: the Messages API request for a prompt and its overrides.

The rules (the forced tool or thinking with `auto`, the token budgets, the prompt-cache
breakpoints) are the ones its module docstring documents; this module only applies them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anthropic
from anthropic.types import TextBlockParam, ThinkingConfigParam, ToolChoiceParam, ToolParam

from common_core.api_models import LLMConfigOverrides
from common_core.enums import CacheTTL, ReasoningEffort
from services.llm_provider_service.models import ComparisonPrompt, PromptPart
from services.llm_provider_service.providers.judgement import (
    JUDGEMENT_SCHEMA,
    TOOL_DESCRIPTION,
    TOOL_NAME,
)

logger = logging.getLogger(__name__)

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
TOOL: ToolParam = {
    "name": TOOL_NAME,
    "description": TOOL_DESCRIPTION,
    "input_schema": JUDGEMENT_SCHEMA,
}
MAX_CACHE_BREAKPOINTS = 4  # Anthropic refuses more cache_control blocks in one request


@dataclass(frozen=True, slots=True)
class MessageRequest:
    """One request as it will be sent (identical on every re-ask)."""

    model: str
    max_tokens: int
    system: str | list[TextBlockParam]
    user_content: str | list[TextBlockParam]
    tool_choice: ToolChoiceParam
    thinking: ThinkingConfigParam | anthropic.Omit
    extra_body: dict[str, object] | None


def plan_request(
    prompt: ComparisonPrompt,
    overrides: LLMConfigOverrides,
    *,
    default_model: str,
    prompt_caching: bool,
) -> MessageRequest:
    """The request for this prompt and these overrides; what Anthropic cannot take is left
    out with a debug log."""
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
    system, user = message_content(
        prompt, prompt_caching=prompt_caching, thinking=budget is not None
    )
    return MessageRequest(
        model=overrides.model_override or default_model,
        max_tokens=max_tokens,
        system=system,
        user_content=user,
        tool_choice=tool_choice,
        thinking=thinking,
        extra_body=extra_body,
    )


def create_kwargs(call: MessageRequest) -> dict[str, Any]:
    """The keyword arguments of `messages.create` for `call`: the one place the Messages
    request is assembled, for the realtime call and (as `batch_params`) a batch entry."""
    return {
        "model": call.model,
        "max_tokens": call.max_tokens,
        "system": call.system,
        "messages": [{"role": "user", "content": call.user_content}],
        "tools": [TOOL],
        "tool_choice": call.tool_choice,
        "thinking": call.thinking,
        "extra_body": call.extra_body,
    }


def batch_params(call: MessageRequest) -> dict[str, Any]:
    """`call` as a Message Batches entry's `params`: the body `messages.create` sends for
    the same `create_kwargs` (omitted fields left out, `extra_body` merged in)."""
    kwargs = create_kwargs(call)
    extra = kwargs.pop("extra_body") or {}
    params = {k: v for k, v in kwargs.items() if not isinstance(v, anthropic.Omit)}
    return {**params, **extra}


def message_content(
    prompt: ComparisonPrompt, *, prompt_caching: bool, thinking: bool
) -> tuple[str | list[TextBlockParam], str | list[TextBlockParam]]:
    """The system prompt and the user message's content: plain strings without prompt
    caching, else text blocks with the cache breakpoints (`cache_breakpoints`). The user
    message stays one string unless a part of it carries a breakpoint."""
    if not prompt_caching:
        plain = prompt.system_prompt
        return (f"{plain}\n\n{THINKING_INSTRUCTION}" if thinking else plain), (prompt.user_prompt)
    marks = cache_breakpoints(prompt)
    count = len(prompt.system_parts)
    system = _text_blocks(prompt.system_parts, [marks.get(i) for i in range(count)])
    if thinking:
        system.append({"type": "text", "text": THINKING_INSTRUCTION})
    user_marks = [marks.get(count + i) for i in range(len(prompt.user_parts))]
    if not any(user_marks):
        return system, prompt.user_prompt
    return system, _text_blocks(prompt.user_parts, user_marks)


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
