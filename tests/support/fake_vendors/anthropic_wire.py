"""The Anthropic Messages wire format (`POST /v1/messages`): answers, errors, request rules.

The answer is a `tool_use` block for the forced (or only) tool whose input is a random
instance of its `input_schema`, with a `thinking` block first when thinking is on; without
tools, a text block with JSON (an instance of `output_config.format.schema` if given). It
refuses, as the API does, thinking with a forced tool, a temperature other than 1 with
thinking, and a thinking budget under 1024 or not below `max_tokens`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from tests.support.fake_vendors import wire
from tests.support.fake_vendors.schemas import prose
from tests.support.fake_vendors.wire import Answers, FaultKind, Reply, Vendor

_ERROR_TYPES: Final[dict[str, str]] = {
    "server_error": "api_error",
    "unavailable": "overloaded_error",
    "overloaded": "overloaded_error",
    "rate_limit": "rate_limit_error",
    "auth": "authentication_error",
    "bad_request": "invalid_request_error",
}


def error(
    vendor: Vendor, kind: str, message: str | None, headers: tuple[tuple[str, str], ...]
) -> Reply:
    """Anthropic's error body; `overloaded` is its own 529."""
    status = 529 if kind == "overloaded" else wire.STATUS[kind]
    request_id = f"req_{wire.hex_id()}"
    body: dict[str, Any] = {
        "type": "error",
        "error": {"type": _ERROR_TYPES[kind], "message": message or wire.MESSAGES[kind]},
        "request_id": request_id,
    }
    return wire.json_reply(status, body, (*headers, ("request-id", request_id)))


def answer(
    answers: Answers, vendor: Vendor, path: str, payload: dict[str, Any], fault: FaultKind | None
) -> Reply:
    problem = request_problem(payload)
    if problem:
        return error(vendor, "bad_request", problem, ())
    tools = [tool for tool in payload.get("tools") or [] if isinstance(tool, dict)]
    choice = payload.get("tool_choice") or {}
    tool: dict[str, Any] | None = None
    if choice.get("type") == "tool":
        tool = next((t for t in tools if t.get("name") == choice.get("name")), None)
        if tool is None:
            unknown = f"tool_choice names unknown tool {choice.get('name')!r}"
            return error(vendor, "bad_request", unknown, ())
    elif tools and choice.get("type") in (None, "auto", "any"):
        tool = tools[0]
    content, stop_reason = _content(answers, payload, tool, fault)
    if fault == "empty":
        content, stop_reason = [], "end_turn"
    if fault == "max_tokens":
        content, stop_reason = _cut_off(content), "max_tokens"
    total = wire.estimate_tokens([payload.get("system"), payload["messages"], payload.get("tools")])
    cache_read, cache_creation, creation_1h = _cache(answers, payload)
    body = {
        "id": f"msg_{wire.hex_id()}",
        "type": "message",
        "role": "assistant",
        "model": payload["model"],
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": max(1, total - cache_read - cache_creation),
            "output_tokens": wire.estimate_tokens(content),
            "cache_read_input_tokens": cache_read,
            "cache_creation_input_tokens": cache_creation,
            "cache_creation": {
                "ephemeral_5m_input_tokens": cache_creation - creation_1h,
                "ephemeral_1h_input_tokens": creation_1h,
            },
        },
    }
    return wire.json_reply(200, body, (("request-id", f"req_{wire.hex_id()}"),))


def _content(
    answers: Answers, payload: dict[str, Any], tool: dict[str, Any] | None, fault: FaultKind | None
) -> tuple[list[dict[str, Any]], str]:
    """The content blocks and stop reason of an answer that is not wire.cut short."""
    shown = [payload.get("system"), payload["messages"]]
    content: list[dict[str, Any]] = []
    thinking = payload.get("thinking") or {}
    if thinking.get("type") in ("enabled", "adaptive"):
        thought = prose(answers.rng, 1, 300) if thinking.get("display") != "omitted" else ""
        content.append(
            {"type": "thinking", "thinking": thought, "signature": f"sig_{wire.hex_id(32)}"}
        )
    output_format = (payload.get("output_config") or {}).get("format") or {}
    if tool is not None:
        tool_input = answers.structured(tool.get("input_schema") or {}, fault, shown)
        block = {"type": "tool_use", "id": f"toolu_{wire.hex_id()}", "name": tool["name"]}
        return [*content, {**block, "input": tool_input}], "tool_use"
    schema: Any = None
    if output_format.get("type") == "json_schema":
        found = output_format.get("schema")
        schema = found if isinstance(found, dict) else {}
    text = wire.compact(answers.structured(schema, fault, shown))
    return [*content, {"type": "text", "text": text}], "end_turn"


def _cache(answers: Answers, payload: Mapping[str, Any]) -> tuple[int, int, int]:
    """(cache reads, cache writes, writes at the 1-hour TTL) of a Messages request: the
    prefix of its blocks (system, then the first user message's content) up to the last
    `cache_control` is read from the cache when seen before, else written to it."""
    blocks = [b for b in _block_list(payload.get("system")) if isinstance(b, dict)]
    messages = payload.get("messages") or []
    if messages and isinstance(messages[0], dict):
        blocks += [b for b in _block_list(messages[0].get("content")) if isinstance(b, dict)]
    marked = [i for i, b in enumerate(blocks) if "cache_control" in b]
    if not marked:
        return 0, 0, 0
    prefix = blocks[: marked[-1] + 1]
    read = answers.cached(prefix)
    if read:
        return read, 0, 0
    hour = [i for i in marked if blocks[i]["cache_control"].get("ttl") == "1h"]
    written_1h = wire.estimate_tokens(blocks[: hour[-1] + 1]) if hour else 0
    return 0, wire.estimate_tokens(prefix), written_1h


def _cut_off(content: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Content wire.cut off at the token limit: a tool call's input incomplete (the API sends
    what it has, here nothing), a text block's JSON wire.cut in half."""
    for block in content:
        if block["type"] == "tool_use":
            block["input"] = {}
        elif block["type"] == "text":
            block["text"] = wire.cut(block["text"])
    return content


def _block_list(value: Any) -> list[Any]:
    """A system prompt or message content as a list of blocks (a plain string is none)."""
    return value if isinstance(value, list) else []


def request_problem(payload: Mapping[str, Any]) -> str | None:
    """The request rules of the Messages API that an adapter can break."""
    if not isinstance(payload.get("model"), str):
        return "model: Field required"
    if not isinstance(payload.get("max_tokens"), int):
        return "max_tokens: Field required"
    if not isinstance(payload.get("messages"), list) or not payload["messages"]:
        return "messages: Field required"
    thinking = payload.get("thinking") or {}
    if thinking.get("type") not in ("enabled", "adaptive"):
        return None
    if (payload.get("tool_choice") or {}).get("type") in ("tool", "any"):
        return "Thinking may not be enabled when tool_choice forces tool use."
    if payload.get("temperature") not in (None, 1, 1.0):
        return (
            "`temperature` may only be set to 1 when thinking is enabled. "
            "Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
        )
    budget = thinking.get("budget_tokens")
    if thinking.get("type") == "enabled":
        if not isinstance(budget, int) or budget < 1024:
            return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        if budget >= payload["max_tokens"]:
            return "`max_tokens` must be greater than `thinking.budget_tokens`."
    return None
