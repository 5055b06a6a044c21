"""Reads request bodies into models, turning every kind of bad input into a 4xx."""

from __future__ import annotations

import contextlib
from itertools import accumulate
from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from quart import g, request

from services.llm_provider_service.errors import (
    RequestValidationError,
    UnknownProviderError,
    UnsupportedMediaTypeError,
)

M = TypeVar("M", bound=BaseModel)

_PROVIDER_FIELDS = {("llm_config_overrides", "provider_override")}

MAX_JSON_DEPTH = 64
"""The deepest nesting of arrays and objects a body may have (the body itself is level 1).
Deeper bodies are refused before any parser sees them: parsers recurse per level."""

# A JSON string, so that brackets inside strings are not counted as nesting.
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


async def parse_json_body(model: type[M]) -> M:
    """Validate the JSON body against `model`.

    Raises `UnsupportedMediaTypeError` for a Content-Type that is not JSON (a missing one is
    taken as JSON), `RequestValidationError` for a body nested deeper than `MAX_JSON_DEPTH`
    or not valid (naming the first bad field), `UnknownProviderError` for an unknown provider
    name; an oversized body is refused by Quart with 413, and one that does not arrive within
    its body timeout with 408, before this.
    """
    _check_content_type(request.headers.get("Content-Type"))
    data = await request.get_data(as_text=False)
    raw = data if isinstance(data, bytes) else data.encode()
    if not raw.strip():
        raise RequestValidationError("request body is empty; expected a JSON object")
    if nested_too_deep(raw):
        raise RequestValidationError(
            f"request body is nested deeper than {MAX_JSON_DEPTH} levels",
            details={"reason": "too_deeply_nested", "max_depth": MAX_JSON_DEPTH},
        )
    try:
        # Strict: a JSON string "7" or `true` is not a priority; clients learn of the mistake.
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        translated = _translate(exc)
        if exc.errors()[0]["type"] != "json_invalid":
            _adopt_correlation_id(raw)
        raise translated from exc


def nested_too_deep(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `raw` nests arrays and objects deeper than `limit`, found without parsing it
    (so without recursion): brackets outside strings, counted in C-level loops. For invalid
    JSON it answers for the depth a recursive parser would reach before giving up."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False  # it cannot nest deeper than it opens
    brackets = _outside_strings(raw).translate(None, _NOT_BRACKETS)
    return bool(brackets) and max(accumulate(map(_DEPTH_STEP.__getitem__, brackets))) > limit


def _outside_strings(raw: bytes) -> bytes:
    """`raw` without its JSON strings, in linear time whatever the input (a regex over an
    unterminated string backtracks quadratically: minutes of a blocked loop for 1 MiB).
    Escaped backslashes go first, then escaped quotes; what is left between quotes is inside
    a string (an unterminated one runs to the end)."""
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    return b"".join(unescaped.split(b'"')[::2])


def _check_content_type(content_type: str | None) -> None:
    """JSON is `application/json` or any `+json` type; a missing Content-Type is taken as
    JSON, as existing clients may send none."""
    if content_type is None or not content_type.strip():
        return
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        return
    raise UnsupportedMediaTypeError(
        "request body must be JSON (Content-Type: application/json)",
        details={"content_type": content_type[:200]},
    )


class _CorrelationOnly(BaseModel):
    correlation_id: UUID


def _adopt_correlation_id(raw: bytes) -> None:
    """Echo the caller's correlation id in the error too, when the body carries a valid one.

    The body is already known to be valid JSON within the depth limit; this second reading
    (of a refused body only) takes nothing but that one field."""
    with contextlib.suppress(ValidationError):
        g.correlation_id = _CorrelationOnly.model_validate_json(raw).correlation_id


def _translate(exc: ValidationError) -> RequestValidationError | UnknownProviderError:
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    first = errors[0]
    if first["type"] == "json_invalid":
        return RequestValidationError("request body is not valid JSON")
    if first["type"] == "model_type" and not first["loc"]:
        return RequestValidationError("request body must be a JSON object")
    field = ".".join(str(part) for part in first["loc"])
    if tuple(first["loc"]) in _PROVIDER_FIELDS and first["type"] == "enum":
        return UnknownProviderError(
            f"{field}: unknown provider", details={"field": field, "errors": _public(errors)}
        )
    return RequestValidationError(
        f"{field}: {first['msg']}", details={"field": field, "errors": _public(errors)}
    )


def _public(errors: list[ErrorDetails]) -> list[dict[str, Any]]:
    return [
        {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]}
        for e in errors
    ]
