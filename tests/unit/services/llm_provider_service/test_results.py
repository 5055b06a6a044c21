"""One source for what passes through: the result is built once (`result_of`), its event from
it (`ComparisonResultData.from_result`), and the caller's pass-through fields travel as a
unit. The JSON of both is byte-identical to what the previous version wrote
(`previous_version.py`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from common_core.api_models import ComparisonRequest, ComparisonResult, ErrorInfo, TokenUsage
from common_core.enums import EssayWinner, LLMProviderType, PresentationOrder, ServedVia
from common_core.events import ComparisonResultData
from common_core.pass_through import PassThrough
from services.llm_provider_service.models import Judgement
from services.llm_provider_service.providers.pricing import PriceTable
from services.llm_provider_service.result_deliveries import ResultDeliveries
from services.llm_provider_service.results import result_of
from tests.unit.services.llm_provider_service.previous_version import (
    ERROR_EVENT,
    FULL,
    RESULT,
    RESULT_BODY,
    RESULT_EVENT,
)

DELIVERIES = ResultDeliveries(
    topic_prefix="huleedu",
    webhook_deadline_seconds=60,
    now=lambda: datetime(2026, 12, 6, 12, 0, 2, tzinfo=UTC),
)


# `served_via` was added after the previous version, last, additively: everything else is
# byte-identical, and a realtime result says so.
LATER = {"served_via"}


def test_the_result_body_is_byte_identical() -> None:
    assert RESULT.model_dump_json(exclude=LATER) == RESULT_BODY
    assert RESULT.model_dump_json().endswith(',"served_via":"realtime"}')


def test_the_result_event_is_byte_identical() -> None:
    envelope = DELIVERIES.envelope(FULL, result=RESULT)
    exclude: Any = {"event_timestamp": True, "data": LATER}
    assert envelope.model_dump_json(exclude=exclude) == RESULT_EVENT
    assert envelope.data.served_via is ServedVia.REALTIME


def test_the_error_event_is_byte_identical() -> None:
    error = ErrorInfo(
        code="PROVIDER_UNAVAILABLE",
        message="down",
        model="m",
        token_usage=TokenUsage(prompt_tokens=3),
    )
    envelope = DELIVERIES.envelope(FULL, error=error)
    exclude: Any = {"event_timestamp": True, "data": LATER}
    assert envelope.model_dump_json(exclude=exclude) == ERROR_EVENT


def judgement() -> Judgement:
    return Judgement(
        winner=EssayWinner.ESSAY_B,
        justification="B is better argued.",
        confidence=3,
        model="claude-sonnet-4-5",
        token_usage=TokenUsage(prompt_tokens=1000, completion_tokens=100, total_tokens=1100),
        provider_request_id="req-9",
    )


def test_a_result_carries_the_judgement_and_the_callers_pass_through_fields() -> None:
    prices = PriceTable()
    result = result_of(FULL, judgement(), 0.25, PresentationOrder.SWAPPED, prices)

    assert result.passed_through() == FULL.request.passed_through()
    assert result.model_dump(include=set(PassThrough.model_fields)) == FULL.request.model_dump(
        include=set(PassThrough.model_fields)
    )
    assert (result.winner, result.justification, result.confidence) == (
        EssayWinner.ESSAY_B,
        "B is better argued.",
        3,
    )
    assert (result.request_id, result.correlation_id, result.trace_id) == (
        FULL.request_id,
        FULL.correlation_id,
        FULL.trace_id,
    )
    assert (result.response_time_ms, result.presentation_order) == (250, PresentationOrder.SWAPPED)
    assert result.cost_estimate == prices.estimate("claude-sonnet-4-5", judgement().token_usage)
    assert result.provider_request_id == "req-9"
    assert result.served_from_cache is False


def test_the_event_takes_every_field_it_shares_with_the_result_from_the_result() -> None:
    result = result_of(FULL, judgement(), 0.25, PresentationOrder.SWAPPED, PriceTable())
    about_request = {"requested_at": FULL.requested_at, "request_metadata": {"k": "v"}}
    data = ComparisonResultData.from_result(result, cost_estimate=0.5, **about_request)

    shared = set(ComparisonResult.model_fields) & set(ComparisonResultData.model_fields)
    assert shared >= {"winner", "justification", "confidence", "model", "completed_at"}
    for name in shared - {"cost_estimate"}:
        assert getattr(data, name) == getattr(result, name), name
    assert (data.cost_estimate, data.cost_estimate_known) == (0.5, True)
    assert (data.requested_at, data.request_metadata) == (FULL.requested_at, {"k": "v"})


def test_what_the_event_says_of_the_request_comes_from_the_job() -> None:
    job = FULL.model_copy(update={"trace_id": "1" * 32})
    result = result_of(FULL, judgement(), 0.25, PresentationOrder.SWAPPED, PriceTable())
    result = result.model_copy(update={"metadata": {}})  # e.g. a test's bare result
    data = DELIVERIES.envelope(job, result=result).data
    assert data.trace_id == "1" * 32
    assert data.request_metadata["essay_a_id"] == "E01"


def test_every_pass_through_field_reaches_the_event_under_its_event_name() -> None:
    result = result_of(FULL, judgement(), 0.25, PresentationOrder.SWAPPED, PriceTable())
    data = json.loads(DELIVERIES.envelope(FULL, result=result).model_dump_json())["data"]
    for name in PassThrough.model_fields:
        sent = getattr(FULL.request, name)
        assert carried(data[PassThrough.EVENT_NAMES.get(name, name)], sent), name


def carried(in_event: Any, sent: Any) -> bool:
    """The event's value is the sent one; a dict (`metadata`) may hold the service's keys
    beside the caller's."""
    if isinstance(sent, dict):
        return {key: in_event.get(key) for key in sent} == sent
    return bool(in_event == sent)


@pytest.mark.parametrize("metadata", [{}, {"essay_pair": "e1-e2", "batch": 7, "n": {"k": [1]}}])
def test_the_pass_through_fields_of_a_request_are_its_own(metadata: dict[str, Any]) -> None:
    sent = ComparisonRequest(user_prompt="Compare.", metadata=metadata)
    assert sent.passed_through() == PassThrough(metadata=metadata)


@pytest.mark.parametrize(
    ("lane", "factor"), [(ServedVia.REALTIME, 1.0), (ServedVia.BATCH, 0.5), (ServedVia.FLEX, 1.0)]
)
def test_a_result_says_its_lane_and_costs_that_lanes_price(lane: ServedVia, factor: float) -> None:
    prices = PriceTable()
    standard = prices.estimate("claude-sonnet-4-5", judgement().token_usage)
    assert standard is not None
    assert FULL.provider is LLMProviderType.MOCK  # which has no flex lane: standard price

    result = result_of(FULL, judgement(), 0.25, PresentationOrder.SWAPPED, prices, lane)

    assert result.served_via is lane
    assert result.cost_estimate == round(standard * factor, 8)
    event = DELIVERIES.envelope(FULL, result=result).data
    assert event.served_via is lane
    assert event.cost_estimate == round(standard * factor, 8)  # the event prices it the same


def test_a_result_stored_before_lanes_reads_as_realtime() -> None:
    stored = json.loads(RESULT_BODY)
    assert "served_via" not in stored
    assert ComparisonResult.model_validate(stored).served_via is ServedVia.REALTIME
    event = ComparisonResultData.model_validate(json.loads(RESULT_EVENT)["data"])
    assert event.served_via is ServedVia.REALTIME
