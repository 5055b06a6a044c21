"""OpenAI: chat completions with strict structured outputs (the judgement JSON schema).

Which parameters a model takes is decided by `model_capabilities`, a pure function over two
small tables, both overridable:

- `reasoning_prefixes` (setting `OPENAI_REASONING_MODEL_PREFIXES`, default o1, o3, o4,
  gpt-5): models whose name starts with one are reasoning models. They take
  `max_completion_tokens` (which also pays for hidden reasoning, hence a larger default
  budget) and refuse `temperature`, which is then left out with a debug log. Other models
  take `max_tokens` and `temperature` and get no reasoning or verbosity parameters.
- `families` (`DEFAULT_REASONING_FAMILIES`): per reasoning family, the `reasoning_effort`
  values it accepts, what the service's "none" becomes, and whether it takes `verbosity`.
  The SDK accepts none/minimal/low/medium/high/xhigh/max, but not every model does:
  gpt-5.1 and later accept "none" (reasoning off); gpt-5 accepts minimal..high, so "none"
  is sent as "minimal", its least; o-series models accept low..high, so "none" is sent as
  "low"; gpt-5 "-chat" snapshots take no effort and no verbosity. A reasoning model that
  matches no family gets the o-series rules, the set every reasoning model accepts.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import openai

from common_core.api_models import LLMConfigOverrides
from common_core.enums import LLMProviderType, ReasoningEffort
from services.llm_provider_service.models import ComparisonPrompt
from services.llm_provider_service.providers.openai_compatible import OpenAICompatibleProvider
from services.llm_provider_service.providers.openai_request import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_REASONING_MAX_TOKENS,
    EFFORTS,
    VERBOSITIES,
    ChatRequest,
    OpenAIEffort,
    ServiceTier,
    Verbosity,
    chat_messages,
    json_schema_format,
    prompt_cache_key,
)
from services.llm_provider_service.settings import ProviderSettings

logger = logging.getLogger(__name__)

_O_SERIES_EFFORTS: frozenset[OpenAIEffort] = frozenset({"low", "medium", "high"})


@dataclass(frozen=True, slots=True)
class ReasoningFamily:
    """Reasoning models whose lower-cased name matches `pattern` (`re.match`: from the start).

    `efforts` are the `reasoning_effort` values the family accepts; a requested "none" that
    is not among them is sent as `none_as` (or left out when that is None).
    """

    pattern: str
    efforts: frozenset[OpenAIEffort]
    none_as: OpenAIEffort | None
    verbosity: bool


DEFAULT_REASONING_FAMILIES: tuple[ReasoningFamily, ...] = (
    # ChatGPT snapshots (gpt-5-chat-latest, gpt-5.1-chat-latest, ...): no reasoning controls.
    ReasoningFamily(r"gpt-5(\.\d+)?-chat", frozenset(), None, verbosity=False),
    # gpt-5.1 and later (and gpt-6 etc., once their prefix is configured): "none" is native.
    ReasoningFamily(
        r"gpt-(5\.[1-9]|[6-9])", frozenset({"none", "low", "medium", "high"}), "none", True
    ),
    # gpt-5, gpt-5-mini, gpt-5-nano and their dated snapshots: "minimal" is the least.
    ReasoningFamily(
        r"gpt-5(?![.\d])", frozenset({"minimal", "low", "medium", "high"}), "minimal", True
    ),
    # o1, o3, o3-mini, o4-mini, ...: "low" is the least, no verbosity.
    ReasoningFamily(r"o\d", _O_SERIES_EFFORTS, "low", verbosity=False),
)
_FALLBACK_FAMILY = ReasoningFamily("", _O_SERIES_EFFORTS, "low", verbosity=False)


@dataclass(frozen=True, slots=True)
class ModelCapabilities:
    """The request parameters one OpenAI model accepts."""

    reasoning: bool
    efforts: frozenset[OpenAIEffort] = frozenset()
    none_as: OpenAIEffort | None = None
    verbosity: bool = False

    @property
    def temperature(self) -> bool:
        return not self.reasoning

    @property
    def default_max_tokens(self) -> int:
        return DEFAULT_REASONING_MAX_TOKENS if self.reasoning else DEFAULT_MAX_TOKENS

    def effort(self, requested: ReasoningEffort) -> OpenAIEffort | None:
        """The `reasoning_effort` to send for `requested`, or None to leave it out."""
        value = EFFORTS[requested]
        if value in self.efforts:
            return value
        return self.none_as if requested is ReasoningEffort.NONE else None


def model_capabilities(
    model: str,
    reasoning_prefixes: Sequence[str],
    families: Sequence[ReasoningFamily] = DEFAULT_REASONING_FAMILIES,
) -> ModelCapabilities:
    """What `model` accepts; fine-tuned models (`ft:<base>:...`) are judged by their base."""
    name = model.lower().removeprefix("ft:")
    if not name.startswith(tuple(prefix.lower() for prefix in reasoning_prefixes)):
        return ModelCapabilities(reasoning=False)
    family = next((f for f in families if re.match(f.pattern, name)), _FALLBACK_FAMILY)
    return ModelCapabilities(
        reasoning=True, efforts=family.efforts, none_as=family.none_as, verbosity=family.verbosity
    )


class OpenAIProvider(OpenAICompatibleProvider):
    """OpenAI chat completions with `strict` structured outputs (see the module docstring
    for which overrides each model family gets). `client` must have `max_retries=0`.

    `service_tier="flex"` makes it the flex lane's adapter: every request asks for flex
    processing (batch prices, slower, refused with a 429 under load, which is a retryable
    `ProviderUnavailableError` as any 429 is); `config.timeout_seconds` is then the flex
    timeout."""

    _provider = LLMProviderType.OPENAI

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        config: ProviderSettings,
        *,
        reasoning_prefixes: tuple[str, ...],
        families: Sequence[ReasoningFamily] = DEFAULT_REASONING_FAMILIES,
        service_tier: ServiceTier | None = None,
    ) -> None:
        super().__init__(client, config)
        self._reasoning_prefixes = reasoning_prefixes
        self._families = tuple(families)
        self._service_tier = service_tier

    def _build_request(
        self, prompt: ComparisonPrompt, overrides: LLMConfigOverrides
    ) -> ChatRequest:
        model = overrides.model_override or self._config.default_model
        caps = model_capabilities(model, self._reasoning_prefixes, self._families)
        ignored: list[str] = []
        temperature = overrides.temperature_override
        if temperature is not None and not caps.temperature:
            ignored.append("temperature_override")
            temperature = None
        effort = _effort(caps, overrides.reasoning_effort, ignored)
        verbosity: Verbosity | None = None
        if overrides.output_verbosity is not None:
            if caps.verbosity:
                verbosity = VERBOSITIES[overrides.output_verbosity]
            else:
                ignored.append("output_verbosity")
        if ignored:
            logger.debug("openai model %s does not take %s; left out", model, ", ".join(ignored))
        max_tokens = overrides.max_tokens_override or caps.default_max_tokens
        return ChatRequest(
            model=model,
            messages=chat_messages(prompt.system_prompt, prompt.user_prompt),
            response_format=json_schema_format(),
            max_tokens=None if caps.reasoning else max_tokens,
            max_completion_tokens=max_tokens if caps.reasoning else None,
            temperature=temperature,
            reasoning_effort=effort,
            verbosity=verbosity,
            prompt_cache_key=prompt_cache_key(prompt),
            service_tier=self._service_tier,
        )


def _effort(
    caps: ModelCapabilities, requested: ReasoningEffort | None, ignored: list[str]
) -> OpenAIEffort | None:
    if requested is None:
        return None
    effort = caps.effort(requested)
    if effort is None:
        ignored.append("reasoning_effort")
    elif effort != requested.value:
        logger.debug("reasoning_effort %s sent as %r, the model's nearest", requested.value, effort)
    return effort
