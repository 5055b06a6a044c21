"""The Gemini (Google AI) generateContent wire format: answers and errors.

`POST /{v1,v1beta}/models/{model}:generateContent` (google-genai 3.x sends `v1` unless
`HttpOptions(api_version=...)` says otherwise): one candidate whose text part is a random
instance of `generationConfig.responseJsonSchema` or `.responseSchema`. A `serviceTier`
(e.g. "flex") is accepted; an unknown one is a 400.
"""

from __future__ import annotations

from typing import Any, Final

from tests.support.fake_vendors import wire
from tests.support.fake_vendors.schemas import camel_schema, prose
from tests.support.fake_vendors.wire import Answers, FaultKind, Reply, Vendor

_TIERS: Final = ("unspecified", "standard", "flex", "priority")  # `serviceTier` on the request
_STATUSES: Final[dict[str, str]] = {
    "server_error": "INTERNAL",
    "unavailable": "UNAVAILABLE",
    "overloaded": "UNAVAILABLE",
    "rate_limit": "RESOURCE_EXHAUSTED",
    "auth": "UNAUTHENTICATED",
    "bad_request": "INVALID_ARGUMENT",
}


def error(
    vendor: Vendor, kind: str, message: str | None, headers: tuple[tuple[str, str], ...]
) -> Reply:
    """Google's error body; a rate limit carries a RetryInfo with the `Retry-After` delay."""
    status = wire.STATUS[kind]
    body: dict[str, Any] = {
        "code": status,
        "message": message or wire.MESSAGES[kind],
        "status": _STATUSES[kind],
    }
    retry_after = dict(headers).get("retry-after")
    if kind == "rate_limit" and retry_after is not None:
        body["details"] = [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after}s"}
        ]
    return wire.json_reply(status, {"error": body}, headers)


def answer(
    answers: Answers, vendor: Vendor, path: str, payload: dict[str, Any], fault: FaultKind | None
) -> Reply:
    # google-genai sends some nested fields in snake_case (`thinking_budget`, `max_length`)
    config = camel_schema(payload.get("generationConfig") or {})
    if not isinstance(payload.get("contents"), list) or not payload["contents"]:
        missing = "* GenerateContentRequest.contents: contents is not specified"
        return error(vendor, "bad_request", missing, ())
    if "responseSchema" in config and "responseJsonSchema" in config:
        both = "responseSchema and responseJsonSchema cannot both be set."
        return error(vendor, "bad_request", both, ())
    if str(payload.get("serviceTier", "standard")).lower() not in _TIERS:
        tier = f"Invalid value at 'service_tier' ({payload['serviceTier']!r})"
        return error(vendor, "bad_request", tier, ())
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    system = payload.get("systemInstruction")
    shown = [system, payload["contents"]]
    text = wire.compact(
        answers.structured(schema if isinstance(schema, dict) else None, fault, shown)
    )
    thinking = config.get("thinkingConfig") or {}
    parts: list[dict[str, Any]] = []
    if thinking.get("includeThoughts"):
        parts.append({"text": prose(answers.rng, 1, 300), "thought": True})
    if fault == "max_tokens":
        text = wire.cut(text)
    parts.append({"text": text})
    candidate: dict[str, Any] = {
        "content": {"role": "model", "parts": parts},
        "finishReason": "MAX_TOKENS" if fault == "max_tokens" else "STOP",
        "index": 0,
    }
    if fault == "empty":
        candidate["content"] = {"role": "model"}
    prompt_tokens = wire.estimate_tokens(shown)
    candidates_tokens = wire.estimate_tokens(text) if fault != "empty" else 0
    thoughts = answers.rng.randint(16, 256) if thinking.get("thinkingBudget", -1) != 0 else 0
    usage: dict[str, Any] = {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": candidates_tokens,
        "totalTokenCount": prompt_tokens + candidates_tokens + thoughts,
    }
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    cached = min(answers.cached(system), prompt_tokens)
    if cached:
        usage["cachedContentTokenCount"] = cached
    match = wire.GEMINI_PATH.match(path)
    body = {
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": match.group(2) if match else "gemini",
        "responseId": wire.hex_id(22),
    }
    return wire.json_reply(200, body)
