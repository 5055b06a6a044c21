"""How a judgement is asked of Gemini: the generateContent config for a prompt and overrides.

One builder for every way the service asks (the realtime call, the flex lane and each entry of
a Batch API job), so the same prompt and overrides are always the same request: structured
output by `response_mime_type="application/json"` with `response_json_schema=JUDGEMENT_SCHEMA`;
thinking budgets and token caps as `plan_tokens` says (see `gemini_provider.py`'s docstring).
"""

from __future__ import annotations

import logging

from google.genai import types

from common_core.api_models import LLMConfigOverrides
from common_core.enums import ReasoningEffort
from services.llm_provider_service.models import ComparisonPrompt
from services.llm_provider_service.providers.judgement import JUDGEMENT_SCHEMA

logger = logging.getLogger(__name__)

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


def generation_config(
    prompt: ComparisonPrompt,
    overrides: LLMConfigOverrides,
    model: str,
    *,
    timeout_seconds: float | None = None,
    service_tier: types.ServiceTier | None = None,
) -> types.GenerateContentConfig:
    """The config of one judgement call to `model`. `timeout_seconds` becomes the SDK's
    per-request timeout (client side only, not on the wire); `service_tier` goes on the
    request (`serviceTier`, e.g. flex)."""
    if overrides.output_verbosity is not None:
        logger.debug("gemini has no output verbosity; ignoring output_verbosity")
    max_tokens, budget = plan_tokens(overrides, model)
    options = None
    if timeout_seconds is not None:
        options = types.HttpOptions(timeout=max(1, round(timeout_seconds * 1000)))
    return types.GenerateContentConfig(
        http_options=options,
        system_instruction=prompt.system_prompt,
        temperature=overrides.temperature_override,
        max_output_tokens=max_tokens,
        response_mime_type="application/json",
        response_json_schema=JUDGEMENT_SCHEMA,
        thinking_config=types.ThinkingConfig(thinking_budget=budget),
        service_tier=service_tier,
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        automatic_continuation=False,
    )


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
