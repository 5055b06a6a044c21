"""`RedactingProvider`: a vendor adapter whose errors carry no secret a vendor echoed back."""

from __future__ import annotations

from common_core.api_models import LLMConfigOverrides
from common_core.enums import LLMProviderType
from services.llm_provider_service.errors import ProviderError
from services.llm_provider_service.models import ComparisonPrompt, Judgement
from services.llm_provider_service.protocols import LLMProvider
from services.llm_provider_service.redaction import Redactor


class RedactingProvider:
    """An `LLMProvider` that passes calls to `inner` and redacts the message and details of
    every `ProviderError` it raises (a vendor's 401 may quote the key it was sent), before
    the breaker (`last_error`), the events, the response or the log see them."""

    def __init__(self, inner: LLMProvider, redactor: Redactor) -> None:
        self._inner = inner
        self._redactor = redactor

    @property
    def provider(self) -> LLMProviderType:
        return self._inner.provider

    @property
    def default_model(self) -> str:
        return self._inner.default_model

    async def compare(self, prompt: ComparisonPrompt, overrides: LLMConfigOverrides) -> Judgement:
        try:
            return await self._inner.compare(prompt, overrides)
        except ProviderError as exc:
            self._redactor.error(exc)
            raise
