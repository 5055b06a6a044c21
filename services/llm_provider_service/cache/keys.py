"""What makes two calls "the same call": provider, model, the prompt as sent, the overrides."""

from __future__ import annotations

import hashlib

from common_core.api_models import LLMConfigOverrides
from common_core.enums import LLMProviderType
from services.llm_provider_service.models import ComparisonPrompt


def call_key(
    provider: LLMProviderType, model: str, prompt: ComparisonPrompt, overrides: LLMConfigOverrides
) -> str:
    digest = hashlib.sha256()
    for part in (provider.value, model, prompt.model_dump_json(), overrides.model_dump_json()):
        digest.update(part.encode())
        digest.update(b"\x00")
    return digest.hexdigest()
