"""What `/openapi.json` says about each route beyond its models: a summary, whether it needs a
caller key, the headers it reads and answers with, and the error statuses it can return.

A route declares it with `@documented(...)` next to quart-schema's `document_request` /
`document_response` (which describe the success bodies); `ServiceOpenAPIProvider` writes it
into the document. What every operation shares is added there, once: the `X-Correlation-ID`
header both ways, a 500 `INTERNAL_ERROR`, a 401 for routes that need a key, `Retry-After` on
every 429 and 503. Every error response has the one error schema (`ErrorResponse`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from quart_schema import Info
from quart_schema.openapi import OpenAPIProvider
from werkzeug.routing.rules import Rule

from common_core.api_models import ErrorResponse
from services.llm_provider_service.version import service_version

T = TypeVar("T", bound=Callable[..., Any])

BEARER_SCHEME = "bearerAuth"
ERROR_SCHEMA = "ErrorResponse"
ERROR_SCHEMA_REF = f"#/components/schemas/{ERROR_SCHEMA}"
_ATTRIBUTE = "_llm_provider_operation"


@dataclass(frozen=True)
class Header:
    """An HTTP header as the document names and describes it."""

    name: str
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})

    def parameter(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "in": "header",
            "required": False,
            "description": self.description,
            "schema": dict(self.schema),
        }

    def response_header(self) -> dict[str, Any]:
        return {"description": self.description, "schema": dict(self.schema)}


CORRELATION_ID = Header(
    "X-Correlation-ID",
    "The request's correlation id. Sent: a UUID to use (else one is generated; a body's "
    "`correlation_id` wins). Answered on every response, errors included.",
    {"type": "string", "format": "uuid"},
)
IDEMPOTENCY_KEY = Header(
    "Idempotency-Key",
    "1 to 255 characters. A retried POST with the same key and body returns the first "
    "request's answer (no new provider call); the same key with another body is 409 "
    "`IDEMPOTENCY_KEY_REUSED`. Same as the body's `idempotency_key`.",
    {"type": "string", "minLength": 1, "maxLength": 255},
)
TRACEPARENT = Header(
    "traceparent",
    "W3C Trace Context: the request joins the caller's trace (its trace id becomes the "
    "result's `trace_id`); an invalid value is ignored.",
    {"type": "string", "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}"},
)
RETRY_AFTER = Header(
    "Retry-After",
    "Seconds to wait before trying again (or before polling the status).",
    {"type": "integer", "minimum": 0},
)
LOCATION = Header(
    "Location",
    "The queued request's status URL, `/api/v1/status/<queue_id>`.",
)
IDEMPOTENT_REPLAYED = Header(
    "Idempotent-Replayed",
    "`true` when this is the stored answer to an earlier request with the same `Idempotency-Key`.",
    {"type": "string", "enum": ["true"]},
)
WWW_AUTHENTICATE = Header("WWW-Authenticate", '`Bearer realm="llm_provider_service"`.')

# What each error status means here, with its stable codes (`errors.py`, `api/errors.py`).
ERROR_STATUSES: Mapping[int, str] = {
    400: "Bad request: `VALIDATION_ERROR`, `UNKNOWN_PROVIDER`, `CACHE_NOT_ALLOWED`, "
    "`CALLBACK_NOT_ALLOWED`.",
    401: "`UNAUTHORIZED`: no `Authorization: Bearer` key, or an unknown one.",
    403: "`FORBIDDEN`: the caller's policy does not allow this.",
    404: "`NOT_FOUND`: no such request (or another caller's).",
    408: "`REQUEST_TIMEOUT`: the request body did not arrive in time.",
    409: "`CONFLICT` or `IDEMPOTENCY_KEY_REUSED`.",
    413: "`PAYLOAD_TOO_LARGE`: the body is larger than `MAX_REQUEST_BODY_BYTES`.",
    415: "`UNSUPPORTED_MEDIA_TYPE`: the body is not JSON.",
    422: "`CALLER_LIMIT_EXCEEDED` (beyond the caller's own cap) or `MAX_TOKENS_TOO_LOW`.",
    429: "`QUOTA_EXCEEDED`: the caller's request rate; `Retry-After` says when it frees up.",
    500: "`INTERNAL_ERROR`: an unexpected error; it has been logged.",
    502: "The provider refused or answered badly: `PROVIDER_AUTH_ERROR`, "
    "`PROVIDER_BAD_REQUEST`, `INVALID_PROVIDER_RESPONSE`.",
    503: "Unavailable for now, with `Retry-After`: `PROVIDER_UNAVAILABLE`, "
    "`PROVIDER_NOT_CONFIGURED`, `PROVIDER_DISABLED`, `QUEUE_UNAVAILABLE`, "
    "`QUEUE_MEMORY_FULL`, `QUEUE_FULL`.",
    504: "`PROVIDER_TIMEOUT`: the provider did not answer in time.",
}
# Statuses every operation can answer, and those that always carry `Retry-After`.
COMMON_ERRORS = frozenset({500})
RETRY_AFTER_STATUSES = frozenset({429, 503})
# Statuses of reading a JSON body (`api/parsing.py`): for routes that take one.
BODY_ERRORS = frozenset({400, 408, 413, 415})


@dataclass(frozen=True)
class Operation:
    """What `@documented` records on a route function."""

    summary: str
    errors: frozenset[int]
    authenticated: bool
    headers: tuple[Header, ...]
    response_headers: Mapping[int, tuple[Header, ...]]
    text_responses: Mapping[int, tuple[str, str]]


def documented(
    summary: str,
    *,
    errors: Iterable[int] = (),
    authenticated: bool = False,
    headers: Iterable[Header] = (),
    response_headers: Mapping[int, Iterable[Header]] | None = None,
    text_responses: Mapping[int, tuple[str, str]] | None = None,
) -> Callable[[T], T]:
    """Document a route: `summary` (one whole sentence; the docstring becomes the
    description), the error `errors` statuses it can answer besides the common ones, whether
    it needs a caller key (`authenticated`, adding 401), the request `headers` it reads, the
    `response_headers` per status, and `text_responses` (status: (media type, description))
    for bodies that are not JSON models. Raises `ValueError` for a status without a meaning
    in `ERROR_STATUSES`."""
    unknown = set(errors) - set(ERROR_STATUSES)
    if unknown:
        raise ValueError(f"undocumented error statuses {sorted(unknown)}")
    operation = Operation(
        summary=summary,
        errors=frozenset(errors) | ({401} if authenticated else set()),
        authenticated=authenticated,
        headers=tuple(headers),
        response_headers={k: tuple(v) for k, v in (response_headers or {}).items()},
        text_responses=dict(text_responses or {}),
    )

    def decorator(func: T) -> T:
        setattr(func, _ATTRIBUTE, operation)
        return func

    return decorator


def service_info() -> Info:
    """The document's `info`, with the service's own version."""
    return Info(
        title="LLM Provider Service",
        version=service_version(),
        description=(
            "Fresh judgements from LLM providers: which of two essays is better, why, and how "
            "sure; queued while a provider is down. Routes under `/api/v1` need "
            "`Authorization: Bearer <key>` when callers are configured (`documentation/"
            "security.md`). Every error has the one shape `ErrorResponse`."
        ),
    )


def _security_schemes() -> dict[str, Any]:
    # Written here, not through quart-schema's `security_schemes`: its classes drop
    # `description`.
    return {
        BEARER_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "A caller's key (`CALLERS` / `CALLERS_FILE`, stored as its SHA-256). Required "
                "on `/api/v1` routes when callers are configured; a missing or unknown key is "
                "401 `UNAUTHORIZED`."
            ),
        }
    }


class ServiceOpenAPIProvider(OpenAPIProvider):
    """quart-schema's document, completed with each route's `Operation`."""

    def schema(self) -> dict[str, Any]:
        document = super().schema()
        document["components"]["securitySchemes"] = _security_schemes()
        return document

    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        paths, components = super().build_paths(rule)
        func = self._app.view_functions[rule.endpoint]
        operation: Operation | None = getattr(func, _ATTRIBUTE, None)
        if operation is None:
            return paths, components
        for operations in paths.values():
            for method, op in operations.items():
                operations[method] = self._complete(dict(op), operation, func, components)
        return paths, components

    def _complete(
        self,
        op: dict[str, Any],
        operation: Operation,
        func: Callable[..., Any],
        components: dict[str, Any],
    ) -> dict[str, Any]:
        op["summary"] = operation.summary
        op["description"] = inspect.getdoc(func) or operation.summary
        headers = (CORRELATION_ID, *operation.headers)
        op["parameters"] = [*op.get("parameters", []), *(h.parameter() for h in headers)]
        if operation.authenticated:
            op["security"] = [{BEARER_SCHEME: []}]
        responses: dict[Any, Any] = {str(k): v for k, v in op.get("responses", {}).items()}
        for status, (media_type, description) in operation.text_responses.items():
            responses[str(status)] = {
                "description": description,
                "content": {media_type: {"schema": {"type": "string"}}},
            }
        _, error_components = self._error_schema()
        components.update(error_components)
        for status in sorted(operation.errors | COMMON_ERRORS):
            responses[str(status)] = {
                "description": ERROR_STATUSES[status],
                "content": {"application/json": {"schema": {"$ref": ERROR_SCHEMA_REF}}},
            }
        for status, response in responses.items():
            response = responses[status] = dict(response)
            extra = operation.response_headers.get(int(status), ())
            is_error = int(status) in operation.errors | COMMON_ERRORS
            if is_error and int(status) in RETRY_AFTER_STATUSES and RETRY_AFTER not in extra:
                extra = (*extra, RETRY_AFTER)
            if int(status) == 401:
                extra = (*extra, WWW_AUTHENTICATE)
            response["headers"] = {h.name: h.response_header() for h in (CORRELATION_ID, *extra)}
        op["responses"] = dict(sorted(responses.items()))
        return op

    def _error_schema(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The components for the one error shape: `ErrorResponse` and what it refers to."""
        response, components = self.build_response_object(ErrorResponse, None)
        schema = response["content"]["application/json"]["schema"]
        return schema, {**components, ERROR_SCHEMA: schema}
