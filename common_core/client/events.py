"""`result_from_event`: a `comparison_result` event (a Kafka record's value or a webhook's
body) read as the same `ComparisonResult` the HTTP API gives for that request."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from common_core.api_models import ComparisonResult
from common_core.client.errors import ComparisonFailedError
from common_core.enums import ErrorCode, QueueStatus
from common_core.events import (
    ComparisonResultData,
    EventEnvelope,
    LLMProviderEvent,
    event_type_name,
)

RESULT_EVENT_TYPE = event_type_name(LLMProviderEvent.COMPARISON_RESULT)
# Keys the service adds to the caller's metadata in `request_metadata`.
SERVICE_METADATA_KEYS = frozenset({"prompt_sha256"})
_ENDED_BY_CODE = {
    ErrorCode.REQUEST_CANCELLED.value: QueueStatus.CANCELLED,
    ErrorCode.REQUEST_EXPIRED.value: QueueStatus.EXPIRED,
}


class NotAResultEventError(ValueError):
    """The input is not a `comparison_result` event this client can read."""


def result_from_event(event: bytes | str | Mapping[str, Any]) -> ComparisonResult:
    """The event's judgement as the `ComparisonResult` of `POST /api/v1/comparison` (200)
    and of the status `result`.

    `event` is the `EventEnvelope` as JSON (bytes or str) or already decoded. The result's
    `metadata` is the event's `request_metadata` without the keys the service adds
    (`prompt_sha256`; a caller's own key of that name is lost). Every other field of the
    result is taken from the event's data when present (newer fields such as
    `presentation_order`, `served_from_cache`, `provider_request_id`); a field that is
    absent (older events) or null gets the model's default. Raises `ComparisonFailedError` (code and
    message of `error_detail`, the request_id as `queue_id`) for an error event, and
    `NotAResultEventError` (a `ValueError`) for anything that is not a result event.
    """
    raw = _decoded(event)
    try:
        envelope = EventEnvelope[ComparisonResultData].model_validate(raw)
    except ValidationError as exc:
        raise NotAResultEventError(f"not a comparison_result event: {_first_problem(exc)}") from exc
    if envelope.event_type != RESULT_EVENT_TYPE:
        raise NotAResultEventError(
            f"event_type is {envelope.event_type!r}, not {RESULT_EVENT_TYPE!r}"
        )
    data = envelope.data
    if data.error_detail is not None:
        code = data.error_detail.code
        raise ComparisonFailedError(
            data.error_detail.message or f"request {data.request_id} ended with {code}",
            code=code,
            queue_id=data.request_id,
            final_status=_ENDED_BY_CODE.get(code, QueueStatus.FAILED),
            correlation_id=data.correlation_id,
        )
    raw_data = raw["data"]
    if isinstance(raw_data, BaseModel):  # a decoded envelope may hold the model itself
        raw_data = raw_data.model_dump()
    return _result(raw_data, data)


def _result(raw_data: Mapping[str, Any], data: ComparisonResultData) -> ComparisonResult:
    fields = {
        name: value
        for name, value in raw_data.items()
        # null means "not known": the result's default (older events lack newer fields).
        if name in ComparisonResult.model_fields and name != "metadata" and value is not None
    }
    fields["metadata"] = {
        key: value
        for key, value in data.request_metadata.items()
        if key not in SERVICE_METADATA_KEYS
    }
    if raw_data.get("cost_estimate_known") is False:  # 0.0 in the event means "unpriced"
        fields["cost_estimate"] = None
    try:
        return ComparisonResult.model_validate(fields)
    except ValidationError as exc:
        raise NotAResultEventError(
            f"result event {data.request_id} lacks result fields: {_first_problem(exc)}"
        ) from exc


def _decoded(event: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(event, bytes | str):
        try:
            event = json.loads(event)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise NotAResultEventError(f"not a comparison_result event: not JSON ({exc})") from exc
    if not isinstance(event, Mapping):
        raise NotAResultEventError(
            f"not a comparison_result event: a JSON {type(event).__name__}, not an object"
        )
    return event


def _first_problem(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "event"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"
