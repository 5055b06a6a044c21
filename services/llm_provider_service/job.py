"""`ComparisonJob` and its stored form, which replicas of other versions read during a deploy.

The stored form is apart from the public request model, which refuses fields it does not
know. It holds:
- `"form"`: its number, `STORED_FORM`. A record without one was written before the number
  existed, in this same layout.
- `"request"`: the request's v1 fields only (`V1_REQUEST_FIELDS`), which every replica since
  v1 accepts; and `"request_additions"`: every request field added since, beside it. v1
  ignores them, as it ignores every job field it does not know; the version before the form
  number merges them into its request (it knows `essay_order` and `prompt_blocks`).
- the job's own fields; `trace_context` only when there is one.

Reading is tolerant from this version on: a field this version does not know (a newer
replica wrote it) is ignored, wherever it is, and logged once per process and field, never
refused.
"""

from __future__ import annotations

import functools
import logging
import types
import typing
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from common_core.api_models import ComparisonRequest, LLMConfigOverrides
from common_core.enums import LLMProviderType, PresentationOrder

logger = logging.getLogger(__name__)

# The request's fields in v1, the first version that stored jobs. Frozen forever: a field
# added to `ComparisonRequest` later is stored in "request_additions", and counts in the
# idempotency fingerprint only when it differs from its default (`idempotency/fingerprint.py`).
V1_REQUEST_FIELDS = frozenset(
    {
        "cache_mode",
        "callback_topic",
        "callback_url",
        "correlation_id",
        "essay_a",
        "essay_b",
        "idempotency_key",
        "llm_config_overrides",
        "metadata",
        "priority",
        "processing_mode",
        "ttl_seconds",
        "user_id",
        "user_prompt",
    }
)
STORED_FORM = 1
_FORM = "form"
_ADDITIONS = "request_additions"


class ComparisonJob(BaseModel):
    """Everything needed to make the call later: the caller's request as sent, plus the
    decisions taken on arrival. Storing the request whole is what makes every override
    survive the queue.

    `presentation_order` is the essay order chosen on arrival (`essay_order.py`) and
    `order_randomized` whether the service chose it at random; the defaults are what a job
    stored before essay order existed meant: presented as sent, not randomized.

    `caller` is the configured caller that sent it (`callers.py`), None when the service is
    open; only that caller may read or cancel it. A job stored before callers existed has
    none.

    `trace_context` is the W3C context (`traceparent`, and `tracestate` if any) of the span
    that queued it, which the worker's span continues (`tracing.md`): None without a span,
    and in a job stored before traces. Left out of the stored form when None.
    """

    model_config = ConfigDict(frozen=True)

    request_id: UUID
    correlation_id: UUID
    provider: LLMProviderType
    request: ComparisonRequest
    requested_at: datetime
    trace_id: str
    presentation_order: PresentationOrder = PresentationOrder.AS_SENT
    order_randomized: bool = False
    caller: str | None = None
    trace_context: dict[str, str] | None = None

    @property
    def overrides(self) -> LLMConfigOverrides:
        return self.request.llm_config_overrides or LLMConfigOverrides()

    @property
    def swapped(self) -> bool:
        return self.presentation_order is PresentationOrder.SWAPPED

    @model_serializer(mode="wrap")
    def _stored_form(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = {_FORM: STORED_FORM, **handler(self)}
        if data.get("trace_context") is None:
            data.pop("trace_context", None)
        request = data.get("request")
        if isinstance(request, dict):
            added = [name for name in request if name not in V1_REQUEST_FIELDS]
            if added:
                data[_ADDITIONS] = {name: request.pop(name) for name in added}
        return data

    @model_validator(mode="before")
    @classmethod
    def _from_stored_form(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("request"), dict):
            return data  # built in code, not read from a store
        data = dict(data)
        form = data.pop(_FORM, STORED_FORM)
        if isinstance(form, int) and form > STORED_FORM:
            _once(
                f"form {form}",
                "stored job form %s is newer than this version's: read as far as known",
                form,
            )
        added = data.pop(_ADDITIONS, None)
        if isinstance(added, dict):
            data["request"] = {**data["request"], **added}
        return _known(cls, data, "job")


def _known(model: type[BaseModel], data: dict[str, Any], path: str) -> dict[str, Any]:
    """`data` without the fields `model` (and each model nested in it) does not know."""
    fields = _fields_of(model)
    known: dict[str, Any] = {}
    for name, value in data.items():
        if name not in fields:
            _ignored(f"{path}.{name}")
            continue
        nested = fields[name]
        if nested is not None and isinstance(value, dict):
            value = _known(nested, value, f"{path}.{name}")
        elif nested is not None and isinstance(value, list):
            value = [
                _known(nested, item, f"{path}.{name}[]") if isinstance(item, dict) else item
                for item in value
            ]
        known[name] = value
    return known


@functools.cache
def _fields_of(model: type[BaseModel]) -> dict[str, type[BaseModel] | None]:
    """`model`'s field names, each with the model it holds, if any: worked out once per
    model, not on every stored job read."""
    return {name: _model_in(field.annotation) for name, field in model.model_fields.items()}


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (`M`, `M | None`, `list[M]`, `list[M] | None`), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


_reported: set[str] = set()


def _ignored(path: str) -> None:
    _once(
        path,
        "stored job field %s is unknown to this version (a newer replica wrote it): ignored",
        path,
    )


def _once(key: str, message: str, *args: object) -> None:
    """Log `message` once per process and `key`: every record of a newer replica carries
    what this version does not know, and one line says what is being ignored."""
    if key in _reported:
        return
    _reported.add(key)
    logger.warning(message, *args, extra={"stored_job": key})
