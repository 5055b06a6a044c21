"""`result_from_event` on hand-built events: older and newer shapes, errors, and garbage."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from common_core.api_models import ComparisonResult
from common_core.client import ComparisonFailedError, NotAResultEventError, result_from_event
from common_core.enums import PresentationOrder, QueueStatus

NOW = "2026-03-01T12:00:00Z"


def event(event_type: str = "llm_provider.comparison_result.v1", **data: Any) -> dict[str, Any]:
    request_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    body: dict[str, Any] = {
        "request_id": request_id,
        "correlation_id": correlation_id,
        "winner": "Essay B",
        "justification": "B argues better.",
        "confidence": 4,
        "provider": "mock",
        "model": "mock-rater-1",
        "response_time_ms": 12,
        "token_usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        "cost_estimate": 0.25,
        "requested_at": NOW,
        "completed_at": NOW,
        "trace_id": "ab" * 16,
        "request_metadata": {"essay_a_id": "a1", "prompt_sha256": "f" * 64},
    }
    body.update(data)
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "event_timestamp": NOW,
        "source_service": "llm_provider_service",
        "schema_version": 1,
        "correlation_id": correlation_id,
        "data": body,
        "metadata": {},
    }


def test_an_older_event_without_the_newer_fields_gets_their_defaults():
    raw = event()

    result = result_from_event(json.dumps(raw).encode())

    defaults = ComparisonResult.model_fields
    assert str(result.request_id) == raw["data"]["request_id"]
    assert result.winner == "Essay B"
    assert result.confidence == 4
    assert result.metadata == {"essay_a_id": "a1"}  # the service's prompt_sha256 is gone
    assert result.completed_at == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert result.served_from_cache is defaults["served_from_cache"].default
    assert result.provider_request_id is None


def test_newer_fields_are_taken_from_the_event():
    raw = event(served_from_cache=True, provider_request_id="req-9", presentation_order="swapped")

    result = result_from_event(raw)

    assert result.served_from_cache is True
    assert result.provider_request_id == "req-9"
    assert result.presentation_order is PresentationOrder.SWAPPED


def test_a_null_newer_field_gets_the_default_and_an_unpriced_cost_is_none():
    raw = event(presentation_order=None, cost_estimate=0.0, cost_estimate_known=False)

    result = result_from_event(raw)

    assert result.cost_estimate is None
    assert result.presentation_order == ComparisonResult.model_fields["presentation_order"].default


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("PROVIDER_AUTH_ERROR", QueueStatus.FAILED),
        ("REQUEST_EXPIRED", QueueStatus.EXPIRED),
        ("REQUEST_CANCELLED", QueueStatus.CANCELLED),
    ],
)
def test_an_error_event_raises_comparison_failed(code: str, status: QueueStatus):
    raw = event(
        winner=None,
        justification=None,
        confidence=None,
        error_detail={"code": code, "message": "it went wrong"},
    )

    with pytest.raises(ComparisonFailedError) as raised:
        result_from_event(json.dumps(raw))

    assert (raised.value.code, raised.value.message) == (code, "it went wrong")
    assert str(raised.value.queue_id) == raw["data"]["request_id"]
    assert raised.value.final_status is status


@pytest.mark.parametrize(
    ("garbage", "says"),
    [
        (b"\xff\xfe not json", "not JSON"),
        ("[1, 2, 3]", "not an object"),
        ({}, "event_type"),
        ({"data": {"winner": "Essay A"}}, "not a comparison_result event"),
        (event("llm_provider.request_started.v1"), "request_started"),
        (event(token_usage=None), "token_usage"),
    ],
    ids=["bytes", "list", "empty", "partial", "other-event-type", "no-token-usage"],
)
def test_anything_else_is_a_value_error_that_says_why(garbage: Any, says: str):
    with pytest.raises(ValueError, match=says):
        result_from_event(garbage)

    with pytest.raises(NotAResultEventError):
        result_from_event(garbage)
