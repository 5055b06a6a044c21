"""Ports of the LLM vendors: the provider itself, its outage drills, and the
development-only cache of its judgements."""

from __future__ import annotations

from typing import Protocol

from common_core.api_models import LLMConfigOverrides
from common_core.enums import LLMProviderType
from services.llm_provider_service.models import ComparisonPrompt, Judgement
from services.llm_provider_service.settings import MockErrorKind


class LLMProvider(Protocol):
    """One LLM vendor, asked for one fresh structured judgement per call."""

    @property
    def provider(self) -> LLMProviderType: ...

    @property
    def default_model(self) -> str: ...

    async def compare(self, prompt: ComparisonPrompt, overrides: LLMConfigOverrides) -> Judgement:
        """Make exactly one fresh call to the vendor and return its judgement.

        Never serves a stored answer. Raises only `ProviderError` subclasses: retryable ones
        (`ProviderUnavailableError`, `ProviderTimeoutError`) for outages, which the caller may
        queue and which count toward the circuit breaker; the others for problems that a
        retry will not fix. Vendor SDK exceptions are translated here, with `raise ... from`.
        The one exception that is no `ProviderError`: `MaxTokensTooLowError` (a
        `RequestError`, 422) when the vendor stopped at the token limit before its judgement
        was complete; it is the caller's own setting, so it never counts as a failure.
        A 200 body of any other shape than the vendor's answer is an
        `InvalidProviderResponseError`. A wait for one of the vendor's concurrency slots
        counts toward the call's timeout (`ProviderTimeoutError` when it runs out).
        """
        ...


class FaultInjection(Protocol):
    """Outage drills: make a provider fail on purpose (the mock, in development and testing)."""

    def set_fault(self, error_rate: float, error_kind: MockErrorKind) -> None:
        """Fail this share of calls (0.0-1.0) with this kind of error; raises ValueError for
        values out of range."""
        ...


class ResponseCache(Protocol):
    """Development-only judgements kept for reuse; staging and production bind one that never
    stores, and `Settings` refuses ENABLE_RESPONSE_CACHE there."""

    async def get(self, key: str) -> Judgement | None:
        """A stored judgement for this call key, or None. Never raises for store failures."""
        ...

    async def put(self, key: str, judgement: Judgement) -> None:
        """Keep `judgement` under `key` for the cache's TTL. Never raises for store failures."""
        ...
