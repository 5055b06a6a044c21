"""Reads request bodies into models, turning every kind of bad input into a 4xx."""

from __future__ import annotations

import json
from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from quart import g, request

from services.llm_provider_service.errors import (
    RequestValidationError,
    UnknownProviderError,
)

M = TypeVar("M", bound=BaseModel)

_PROVIDER_FIELDS = {("llm_config_overrides", "provider_override")}


async def parse_json_body(model: type[M]) -> M:
    """Validate the JSON body against `model`.

    Raises `RequestValidationError` (naming the first bad field), `UnknownProviderError` for
    an unknown provider name; an oversized body is refused by Quart with 413 before this.
    """
    raw = await request.get_data(as_text=False)
    if not raw.strip():
        raise RequestValidationError("request body is empty; expected a JSON object")
    try:
        # Strict: a JSON string "7" or `true` is not a priority; clients learn of the mistake.
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        _adopt_correlation_id(raw)
        raise _translate(exc) from exc


def _adopt_correlation_id(raw: str | bytes) -> None:
    """Echo the caller's correlation id in the error too, when the body carries a valid one."""
    try:
        body = json.loads(raw)
        g.correlation_id = UUID(str(body["correlation_id"]))
    except (ValueError, TypeError, KeyError):
        pass


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
