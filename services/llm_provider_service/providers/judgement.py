"""The one judgement shape every vendor is asked for, and the strict check of what came back."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import ValidationError

from common_core.api_models import JUSTIFICATION_MAX_CHARS, TokenUsage
from common_core.enums import LLMProviderType
from services.llm_provider_service.errors import InvalidProviderResponseError, ServiceError
from services.llm_provider_service.models import Judgement

logger = logging.getLogger(__name__)
R = TypeVar("R")

TOOL_NAME = "comparison_result"
TOOL_DESCRIPTION = "Record which essay is better, why, and how confident you are."

# Strict-mode compatible (OpenAI structured outputs): every property required, no extras.
JUDGEMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "winner": {
            "type": "string",
            "enum": ["Essay A", "Essay B"],
            "description": "The better essay.",
        },
        # No maxLength: strict structured outputs and Gemini's schema subset do not all accept
        # it. The limit is stated here and enforced by `parse_judgement`.
        "justification": {
            "type": "string",
            "description": f"Why, in at most {JUSTIFICATION_MAX_CHARS} characters.",
        },
        "confidence": {
            "type": "integer",
            "minimum": 1,
            "maximum": 5,
            "description": "1 = a guess, 5 = certain.",
        },
    },
    "required": ["winner", "justification", "confidence"],
    "additionalProperties": False,
}


def parse_judgement(
    provider: LLMProviderType,
    payload: str | dict[str, Any] | None,
    *,
    model: str,
    usage: TokenUsage,
    provider_request_id: str | None,
) -> Judgement:
    """The vendor's structured answer as a `Judgement`, or `InvalidProviderResponseError`.

    No repairs: a winner other than exactly "Essay A"/"Essay B", a confidence outside 1-5 (or
    on another scale), a justification over the limit, or a missing field is invalid. A wrong
    judgement silently "fixed" would enter the Bradley-Terry fit as a real one.
    """
    data = _as_object(provider, payload)
    fields = {
        "winner": data.get("winner"),
        "justification": data.get("justification"),
        "confidence": data.get("confidence"),
        "model": model,
        "token_usage": usage.model_dump(),
        "provider_request_id": provider_request_id,
    }
    try:
        # Strict JSON validation: "Essay A" is the enum's exact value, but "5" or 4.0 is not a
        # confidence and "essay a" is not a winner.
        return Judgement.model_validate_json(json.dumps(fields), strict=True)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidProviderResponseError(
            provider,
            f"{provider.value} answered outside the judgement schema: {problems}",
            details={"model": model},
        ) from exc


def _as_object(provider: LLMProviderType, payload: str | dict[str, Any] | None) -> dict[str, Any]:
    if isinstance(payload, dict):
        return payload
    if not payload or not isinstance(payload, str):
        raise InvalidProviderResponseError(provider, f"{provider.value} returned no judgement")
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise InvalidProviderResponseError(
            provider, f"{provider.value} returned a judgement that is not JSON"
        ) from exc
    if not isinstance(data, dict):
        raise InvalidProviderResponseError(
            provider, f"{provider.value} returned JSON that is not an object"
        )
    return data


def added_usage(a: TokenUsage, b: TokenUsage) -> TokenUsage:
    """Two calls' usage together, field by field."""
    return TokenUsage(**{name: getattr(a, name) + getattr(b, name) for name in _COUNTS})


_COUNTS = tuple(TokenUsage.model_fields)


async def ask_until_valid(
    provider: LLMProviderType,
    reasks: int,
    send: Callable[[], Awaitable[R]],
    usage_of: Callable[[R], TokenUsage],
    judge: Callable[[R, TokenUsage], Judgement],
) -> Judgement:
    """`send` once, and again up to `reasks` times while the answer is invalid.

    `judge(response, usage)` turns a response into a judgement (raising
    `InvalidProviderResponseError` for one outside the schema); `usage` sums every attempt's
    tokens, since the vendor bills the re-asks too, and a final invalid answer carries that
    sum as `spent`. Outage errors are never re-asked: the queue's backoff, not a tight loop
    here, retries those; nor is `MaxTokensTooLowError`, which the same limit would repeat.

    This is the guard around every adapter's reading of a 200 answer: the SDKs build their
    response objects without validating them, so a body of another shape surfaces here as
    any exception at all. `usage_of` failing counts as no tokens; `judge` raising anything
    but a `ServiceError` is an `InvalidProviderResponseError` (re-asked like any other).
    """
    spent = TokenUsage()
    failure: InvalidProviderResponseError | None = None
    for attempt in range(1 + max(0, reasks)):
        if failure is not None:
            logger.info("re-asking %s (attempt %d): %s", provider.value, attempt + 1, failure)
        try:
            response = await send()
            spent = added_usage(spent, _usage_or_none(usage_of, response))
            return _read(provider, judge, response, spent)
        except InvalidProviderResponseError as exc:
            failure = exc
    assert failure is not None
    failure.spent = spent if spent != TokenUsage() else None
    raise failure


def _usage_or_none(usage_of: Callable[[R], TokenUsage], response: R) -> TokenUsage:
    """The answer's token usage, or none where the body has no readable usage."""
    try:
        return usage_of(response)
    except Exception:  # the judge step reports what is wrong with the body
        logger.debug("no readable token usage in the answer", exc_info=True)
        return TokenUsage()


def _read(
    provider: LLMProviderType,
    judge: Callable[[R, TokenUsage], Judgement],
    response: R,
    spent: TokenUsage,
) -> Judgement:
    try:
        return judge(response, spent)
    except ServiceError:
        raise
    except Exception as exc:  # a 200 body of another shape than the vendor's answer
        raise InvalidProviderResponseError(
            provider,
            f"{provider.value} answered with a body of an unexpected shape ({type(exc).__name__})",
        ) from exc
