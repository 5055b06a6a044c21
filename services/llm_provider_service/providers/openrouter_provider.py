"""OpenRouter: many vendors' models behind OpenAI's chat-completions format, via the openai SDK.

Structured output. OpenRouter publishes per-model `supported_parameters`, but asking for them
would be one more network dependency at start-up; instead the adapter takes a prefix list,
`json_schema_models` (default `DEFAULT_JSON_SCHEMA_MODELS`: openai/, anthropic/, google/,
whose upstream APIs enforce a JSON schema). Those models get the strict judgement schema as
`response_format` json_schema. Every other model gets JSON mode (`{"type": "json_object"}`)
with the schema spelled out in the system prompt; either way the answer is validated here,
and one outside the schema is re-asked and then refused, never repaired.

Overrides: `temperature`, `max_tokens` and `verbosity` go through as OpenRouter's own
parameters, and `reasoning_effort` as its unified `reasoning: {"effort": ...}`, which accepts
"none" and maps each value to the routed model's own control. OpenRouter drops parameters a
model does not support (no `provider.require_parameters` is sent), so an override never
turns into a 400. `max_tokens` defaults to `DEFAULT_MAX_TOKENS`, or
`DEFAULT_REASONING_MAX_TOKENS` when reasoning is asked for or the model is in
`reasoning_models`, since reasoning tokens count against the same limit.

Attribution (`HTTP-Referer`, `X-Title`) travels as the client's `default_headers`, set by
the composition root from settings (`attribution_headers`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import openai

from common_core.api_models import LLMConfigOverrides
from common_core.enums import LLMProviderType, ReasoningEffort
from services.llm_provider_service.models import ComparisonPrompt
from services.llm_provider_service.providers.judgement import JUDGEMENT_SCHEMA
from services.llm_provider_service.providers.openai_compatible import OpenAICompatibleProvider
from services.llm_provider_service.providers.openai_request import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_REASONING_MAX_TOKENS,
    VERBOSITIES,
    ChatRequest,
    chat_messages,
    json_object_format,
    json_schema_format,
)
from services.llm_provider_service.settings import ProviderSettings

logger = logging.getLogger(__name__)

DEFAULT_JSON_SCHEMA_MODELS: tuple[str, ...] = ("openai/", "anthropic/", "google/")
DEFAULT_REASONING_MODELS: tuple[str, ...] = ("openai/o1", "openai/o3", "openai/o4", "openai/gpt-5")

JSON_MODE_INSTRUCTIONS = (
    "Answer with exactly one JSON object and nothing else: no prose, no code fences. "
    "It must be valid against this JSON Schema:\n"
    + json.dumps(JUDGEMENT_SCHEMA, indent=2, ensure_ascii=False)
)


def attribution_headers(http_referer: str | None, app_title: str | None) -> dict[str, str]:
    """OpenRouter's app attribution headers, for the client's `default_headers`."""
    headers: dict[str, str] = {}
    if http_referer:
        headers["HTTP-Referer"] = http_referer
    if app_title:
        headers["X-Title"] = app_title
    return headers


class OpenRouterProvider(OpenAICompatibleProvider):
    """OpenRouter chat completions (see the module docstring). `client` must point at
    OpenRouter's base URL and have `max_retries=0`."""

    _provider = LLMProviderType.OPENROUTER

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        config: ProviderSettings,
        *,
        json_schema_models: Sequence[str] = DEFAULT_JSON_SCHEMA_MODELS,
        reasoning_models: Sequence[str] = DEFAULT_REASONING_MODELS,
    ) -> None:
        super().__init__(client, config)
        self._json_schema_models = tuple(prefix.lower() for prefix in json_schema_models)
        self._reasoning_models = tuple(prefix.lower() for prefix in reasoning_models)

    def supports_json_schema(self, model: str) -> bool:
        return model.lower().startswith(self._json_schema_models)

    def _build_request(
        self, prompt: ComparisonPrompt, overrides: LLMConfigOverrides
    ) -> ChatRequest:
        model = overrides.model_override or self._config.default_model
        if self.supports_json_schema(model):
            system, response_format = prompt.system_prompt, json_schema_format()
        else:
            system = f"{prompt.system_prompt}\n\n{JSON_MODE_INSTRUCTIONS}"
            response_format = json_object_format()
        effort = overrides.reasoning_effort
        reasoning = (effort is not None and effort is not ReasoningEffort.NONE) or (
            model.lower().startswith(self._reasoning_models)
        )
        default_max = DEFAULT_REASONING_MAX_TOKENS if reasoning else DEFAULT_MAX_TOKENS
        verbosity = overrides.output_verbosity
        return ChatRequest(
            model=model,
            messages=chat_messages(system, prompt.user_prompt),
            response_format=response_format,
            max_tokens=overrides.max_tokens_override or default_max,
            temperature=overrides.temperature_override,
            verbosity=VERBOSITIES[verbosity] if verbosity is not None else None,
            extra_body={"reasoning": {"effort": effort.value}} if effort is not None else None,
        )
