"""`fingerprint`: what makes two request bodies "the same request" for an idempotency key.

Canonical across versions: a field a version adds, left at its default, does not change the
fingerprint, so a client retrying across a rolling deploy is not refused with 409 for the
retention of the key (IDEMPOTENCY_RETENTION_SECONDS).
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel

from common_core.api_models import ComparisonRequest, LLMConfigOverrides, PromptBlock
from services.llm_provider_service.job import V1_REQUEST_FIELDS

# The fields that always count, per model: those each had when its fingerprints were first
# stored. Frozen: any other field counts only when it differs from its default.
_ALWAYS_COUNTED: dict[type[BaseModel], frozenset[str]] = {
    ComparisonRequest: V1_REQUEST_FIELDS,
    LLMConfigOverrides: frozenset(
        {
            "provider_override",
            "model_override",
            "temperature_override",
            "max_tokens_override",
            "system_prompt_override",
            "reasoning_effort",
            "output_verbosity",
        }
    ),
    PromptBlock: frozenset({"target", "content", "cacheable", "ttl", "content_hash", "essay"}),
}


def fingerprint(request: ComparisonRequest) -> str:
    """SHA-256 (hex) of the request's JSON without `idempotency_key` (the key itself) and
    without every field added since its model's frozen set while at its default."""
    exclude = {"idempotency_key": True, **_unset_additions(request)}
    body = request.model_dump_json(exclude=exclude)
    return hashlib.sha256(body.encode()).hexdigest()


def _unset_additions(model: BaseModel) -> dict[Any, Any]:
    """pydantic's `exclude` for `model`: each added field at its default, and the same
    within the models it holds."""
    counted = next((f for cls, f in _ALWAYS_COUNTED.items() if isinstance(model, cls)), None)
    exclude: dict[Any, Any] = {}
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        added = counted is not None and name not in counted
        if added and value == field.get_default(call_default_factory=True):
            exclude[name] = True
            continue
        inner = _within(value)
        if inner:
            exclude[name] = inner
    return exclude


def _within(value: Any) -> dict[Any, Any]:
    if isinstance(value, BaseModel):
        return _unset_additions(value)
    if isinstance(value, list):
        items = {i: _within(item) for i, item in enumerate(value)}
        return {i: spec for i, spec in items.items() if spec}
    return {}
