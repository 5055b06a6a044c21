"""The OpenAI and OpenRouter chat-completions wire format: answers, errors, the strict rules.

`POST /v1/chat/completions` (OpenAI) and `POST /api/v1/chat/completions` (OpenRouter): a
chat.completion whose message content is a random instance of
`response_format.json_schema.schema` (or a random judgement with `json_object`). OpenAI
refuses a `strict` json_schema that breaks the structured-outputs rules.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Final

from tests.support.fake_vendors import wire
from tests.support.fake_vendors.schemas import Lookup, resolve, resolver
from tests.support.fake_vendors.wire import Answers, FaultKind, Reply, Vendor

_ERRORS: Final[dict[str, tuple[str, str | None]]] = {
    "server_error": ("server_error", None),
    "unavailable": ("server_error", "service_unavailable"),
    "overloaded": ("server_error", "engine_overloaded"),
    "rate_limit": ("requests", "rate_limit_exceeded"),
    "auth": ("invalid_request_error", "invalid_api_key"),
    "bad_request": ("invalid_request_error", "invalid_value"),
}


def error(
    vendor: Vendor, kind: str, message: str | None, headers: tuple[tuple[str, str], ...]
) -> Reply:
    """OpenAI's error body (OpenRouter's carries the status as `code`)."""
    status, text = wire.STATUS[kind], message or wire.MESSAGES[kind]
    error_type, code = _ERRORS[kind]
    if vendor == "openrouter":
        body: dict[str, Any] = {"error": {"message": text, "type": error_type, "code": status}}
    else:
        body = {"error": {"message": text, "type": error_type, "param": None, "code": code}}
    return wire.json_reply(status, body, (*headers, ("x-request-id", f"req_{wire.hex_id()}")))


def answer(
    answers: Answers, vendor: Vendor, path: str, payload: dict[str, Any], fault: FaultKind | None
) -> Reply:
    messages = payload.get("messages")
    if not isinstance(payload.get("model"), str) or not isinstance(messages, list):
        return error(vendor, "bad_request", "'model' and 'messages' are required.", ())
    response_format = payload.get("response_format") or {}
    schema: Mapping[str, Any] | None = None
    if response_format.get("type") == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec["schema"] if isinstance(spec.get("schema"), dict) else {}
        problem = strict_schema_problem(schema) if spec.get("strict") else None
        if problem and vendor == "openai":
            name = spec.get("name", "response")
            text = f"Invalid schema for response_format '{name}': {problem}"
            return error(vendor, "bad_request", text, ())
    content = "" if fault == "empty" else wire.compact(answers.structured(schema, fault, messages))
    if fault == "max_tokens":
        content = wire.cut(content)
    system = [
        m for m in messages if isinstance(m, dict) and m.get("role") in ("system", "developer")
    ]
    prompt_tokens = wire.estimate_tokens(messages)
    completion_tokens = wire.estimate_tokens(content) if content else 0
    reasoning = answers.rng.randint(16, 256) if payload.get("reasoning_effort") else 0
    body: dict[str, Any] = {
        "id": f"{'gen-' if vendor == 'openrouter' else 'chatcmpl-'}{wire.hex_id()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": payload["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "length" if fault == "max_tokens" else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens + reasoning,
            "total_tokens": prompt_tokens + completion_tokens + reasoning,
            "prompt_tokens_details": {"cached_tokens": min(answers.cached(system), prompt_tokens)},
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        },
        "system_fingerprint": "fp_fake",
    }
    if vendor == "openrouter":
        body["provider"] = "FakeRouter"
    if payload.get("service_tier"):  # flex: answered at the tier asked for, as OpenAI echoes it
        body["service_tier"] = payload["service_tier"]
    return wire.json_reply(200, body, (("x-request-id", f"req_{wire.hex_id()}"),))


def strict_schema_problem(schema: Mapping[str, Any]) -> str | None:
    """OpenAI's structured-outputs rule for `strict: true`: every object sets
    `additionalProperties: false` and lists all its properties in `required`."""
    return _strict_problem(schema, resolver(schema), "()")


def _strict_problem(schema: Any, refs: Lookup, at: str) -> str | None:
    node = resolve(schema, refs)
    kinds = node.get("type")
    if "object" in (kinds if isinstance(kinds, list) else [kinds]) or "properties" in node:
        if node.get("additionalProperties") is not False:
            return (
                f"In context={at}, 'additionalProperties' is required to be supplied "
                "and to be false."
            )
        properties = node.get("properties") or {}
        missing = [name for name in properties if name not in (node.get("required") or [])]
        if missing:
            return (
                f"In context={at}, 'required' is required to be supplied and to be an array "
                f"including every key in properties. Missing '{missing[0]}'."
            )
        children = [(f"{at}, 'properties', '{k}'", v) for k, v in properties.items()]
    else:
        items = node.get("items")
        children = [(f"{at}, 'items'", items)] if isinstance(items, dict) else []
    children += [(at, option) for key in ("anyOf", "allOf") for option in node.get(key) or []]
    for where, child in children:
        problem = _strict_problem(child, refs, where)
        if problem:
            return problem
    return None


def key_echo(headers: dict[str, str]) -> str:
    """OpenAI's 401 message, which names the key it was sent, masked."""
    key = headers.get("x-api-key") or headers.get("x-goog-api-key") or ""
    if not key:
        key = headers.get("authorization", "").removeprefix("Bearer ").strip()
    masked = f"{key[:6]}***{key[-4:]}" if len(key) > 10 else "***"
    return (
        f"Incorrect API key provided: {masked}. You can find your API key at "
        "https://platform.openai.com/account/api-keys."
    )
