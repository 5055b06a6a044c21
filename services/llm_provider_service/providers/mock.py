"""A network-free provider that judges like a noisy human rater, for development and drills."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import assert_never, get_args

from common_core.api_models import LLMConfigOverrides, TokenUsage
from common_core.enums import EssayWinner, LLMProviderType
from services.llm_provider_service.errors import (
    InvalidProviderResponseError,
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from services.llm_provider_service.models import ComparisonPrompt, Judgement
from services.llm_provider_service.providers.ability_marker import (
    confidence_for,
    first_win_probability,
)
from services.llm_provider_service.providers.mock_words import (
    CHARS_PER_TOKEN,
    STRUCTURE_TOKENS,
    compose_justification,
    fit_to_budget,
)
from services.llm_provider_service.settings import MockErrorKind, MockSettings

logger = logging.getLogger(__name__)

_PROVIDER = LLMProviderType.MOCK
_ERROR_KINDS: frozenset[str] = frozenset(get_args(MockErrorKind))
_CONFIDENCE_LEVELS = (1, 2, 3, 4, 5)
# Overrides a real adapter would send to the vendor but that change nothing here.
# `provider_override` is absent: the router consumed it before this provider was chosen.
_IGNORED_OVERRIDES = ("system_prompt_override", "reasoning_effort", "output_verbosity")


def _check_fault(error_rate: float, error_kind: str) -> None:
    """Raise `ValueError` unless `error_rate` is in [0, 1] and `error_kind` is a `MockErrorKind`."""
    if not 0.0 <= error_rate <= 1.0:  # also refuses NaN
        raise ValueError(f"error_rate must be within [0, 1], got {error_rate!r}")
    if error_kind not in _ERROR_KINDS:
        raise ValueError(f"error_kind must be one of {sorted(_ERROR_KINDS)}, got {error_kind!r}")


def _check_config(config: MockSettings) -> None:
    """Raise `ValueError` for values the mock cannot use, also in a section built without
    validation (`model_copy`): `confidence_weights` are the relative odds of confidence 1..5
    (non-negative, not all zero); latencies are in milliseconds; `error_rate` is the chance
    that a call raises the error for `error_kind` instead of answering."""
    if not config.default_model:
        raise ValueError("default_model must not be empty")
    if not 0.0 <= config.win_probability_a <= 1.0:
        raise ValueError(
            f"win_probability_a must be within [0, 1], got {config.win_probability_a!r}"
        )
    weights = config.confidence_weights
    if len(weights) != len(_CONFIDENCE_LEVELS):
        raise ValueError(f"confidence_weights needs 5 values, got {len(weights)}")
    if not all(math.isfinite(w) and w >= 0.0 for w in weights) or sum(weights) <= 0.0:
        raise ValueError(f"confidence_weights must be finite, >= 0 and not all 0: {weights!r}")
    for name, value in (
        ("latency_ms", config.latency_ms),
        ("latency_jitter_ms", config.latency_jitter_ms),
    ):
        if not (math.isfinite(value) and value >= 0.0):
            raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    _check_fault(config.error_rate, config.error_kind)
    if config.rater not in ("random", "bradley_terry"):
        raise ValueError(f"rater must be random or bradley_terry, got {config.rater!r}")
    if not math.isfinite(config.position_bias):
        raise ValueError(f"position_bias must be finite, got {config.position_bias!r}")


class MockProvider:
    """An `LLMProvider` with no network that answers like a rater with natural variation.

    Every call draws afresh from the injected `rng`: the same seed replays the same run, but
    no randomness is derived from the prompt text, so identical prompts get varied answers,
    as Bradley-Terry fitting needs. The `random` rater picks "Essay A" with
    `win_probability_a`; the `bradley_terry` rater reads the essays' abilities from markers
    in the presented prompt (`ability_marker.py`) and picks the first-presented essay with
    probability logistic(position_bias + θ_first - θ_second), tagging its justification
    with what it saw ("[mock-bt: first won, p=0.73]") so a test can check the mapping back.

    In the `random` rater `temperature_override` only reshapes the confidence
    distribution (0 always gives its mode; below 1 sharpens, above 1 flattens; zero weights
    stay impossible); it never touches the winner's odds, because a real model's
    determinism at temperature 0 is per prompt, which could only be imitated by hashing
    the prompt, and that would make the mock a perfectly consistent "super-rater".
    """

    def __init__(
        self,
        config: MockSettings,
        rng: random.Random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Raises `ValueError` for values of `config` the mock cannot use."""
        _check_config(config)
        self._config = config
        self._rng = rng
        self._sleep = sleep
        self._error_rate = config.error_rate
        self._error_kind: MockErrorKind = config.error_kind

    @property
    def provider(self) -> LLMProviderType:
        return _PROVIDER

    @property
    def default_model(self) -> str:
        return self._config.default_model

    @property
    def error_rate(self) -> float:
        """The current chance that a call fails (see `set_fault`)."""
        return self._error_rate

    @property
    def error_kind(self) -> MockErrorKind:
        """The error that an injected failure raises (see `set_fault`)."""
        return self._error_kind

    def set_fault(self, error_rate: float, error_kind: MockErrorKind) -> None:
        """Change the injected failures for calls that start from now on, for outage drills.

        Raises `ValueError` (and changes nothing) unless `error_rate` is in [0, 1] and
        `error_kind` is a `MockErrorKind`.
        """
        _check_fault(error_rate, error_kind)
        self._error_rate = error_rate
        self._error_kind = error_kind

    async def compare(self, prompt: ComparisonPrompt, overrides: LLMConfigOverrides) -> Judgement:
        """Wait a jittered latency, then raise an injected fault or return a fresh judgement.

        Raises the `error_kind`'s `ProviderError` with probability `error_rate`. A
        `max_tokens_override` shortens the justification (to a bare verdict if need be);
        below about 30 tokens even that may not fit, and the call raises
        `InvalidProviderResponseError`, as a vendor's truncated structured output would.
        """
        _log_ignored_overrides(overrides)
        rng = self._rng
        # One roll per call even at rate 0, so that the fault setting does not shift a seeded
        # run's later draws until a fault actually fires.
        fault = self._error_kind if rng.random() < self._error_rate else None
        await self._sleep(self._draw_latency_seconds())
        if fault is not None:
            raise _injected_error(fault, rng)
        tag = ""
        if self._config.rater == "bradley_terry":
            p_a = first_win_probability(prompt.user_prompt, self._config.position_bias)
            winner = EssayWinner.ESSAY_A if rng.random() < p_a else EssayWinner.ESSAY_B
            confidence = confidence_for(p_a)
            position = "first" if winner is EssayWinner.ESSAY_A else "second"
            tag = f"[mock-bt: {position} won, p={p_a:.2f}]"
        else:
            p_a = self._config.win_probability_a
            winner = EssayWinner.ESSAY_A if rng.random() < p_a else EssayWinner.ESSAY_B
            confidence = self._draw_confidence(overrides.temperature_override)
        verdict, sentences = compose_justification(rng, winner, confidence)
        justification = fit_to_budget(verdict, sentences, overrides.max_tokens_override, prefix=tag)
        return Judgement(
            winner=winner,
            justification=justification,
            confidence=confidence,
            model=overrides.model_override or self._config.default_model,
            token_usage=_token_usage(prompt, justification),
            # Drawn from `rng` as well, so that a seeded run replays byte for byte.
            provider_request_id=f"mock-{uuid.UUID(int=rng.getrandbits(128), version=4).hex}",
        )

    def _draw_latency_seconds(self) -> float:
        jitter = self._config.latency_jitter_ms
        latency_ms = self._config.latency_ms + self._rng.uniform(-jitter, jitter)
        return max(0.0, latency_ms) / 1000.0

    def _draw_confidence(self, temperature: float | None) -> int:
        weights = _tempered(self._config.confidence_weights, temperature)
        return self._rng.choices(_CONFIDENCE_LEVELS, weights=weights)[0]


def _tempered(weights: Sequence[float], temperature: float | None) -> list[float]:
    """`weights` raised to 1/temperature (1 when None); at 0 only the largest remain.

    Normalising by the largest weight first keeps every value in [0, 1], so no power
    overflows, and zero weights stay zero at every temperature.
    """
    if temperature is None:
        return list(weights)
    top = max(weights)
    if temperature == 0.0:
        return [1.0 if w == top else 0.0 for w in weights]
    return [(w / top) ** (1.0 / temperature) if w > 0.0 else 0.0 for w in weights]


def _token_usage(prompt: ComparisonPrompt, justification: str) -> TokenUsage:
    prompt_chars = len(prompt.system_prompt) + len(prompt.user_prompt)
    prompt_tokens = max(1, math.ceil(prompt_chars / CHARS_PER_TOKEN))
    completion_tokens = STRUCTURE_TOKENS + math.ceil(len(justification) / CHARS_PER_TOKEN)
    return TokenUsage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
    )


def _injected_error(kind: MockErrorKind, rng: random.Random) -> ProviderError:
    """The error a real adapter would raise for this kind of vendor failure."""
    message = f"mock provider: injected {kind.replace('_', ' ')}"
    match kind:
        case "server_error":
            return ProviderUnavailableError(_PROVIDER, message, reason="server_error", status=503)
        case "rate_limit":
            retry_after = float(rng.randint(1, 5))
            return ProviderUnavailableError(
                _PROVIDER, message, reason="rate_limited", status=429, retry_after=retry_after
            )
        case "timeout":
            return ProviderTimeoutError(_PROVIDER, message)
        case "connection":
            return ProviderUnavailableError(_PROVIDER, message, reason="connection_error")
        case "auth":
            return ProviderAuthError(_PROVIDER, message, status=401)
        case "bad_request":
            return ProviderBadRequestError(_PROVIDER, message, status=400)
        case "invalid_response":
            return InvalidProviderResponseError(_PROVIDER, message)
        case _:
            assert_never(kind)


def _log_ignored_overrides(overrides: LLMConfigOverrides) -> None:
    ignored = [name for name in _IGNORED_OVERRIDES if getattr(overrides, name) is not None]
    if ignored:
        logger.debug("mock provider ignores overrides: %s", ", ".join(ignored))
