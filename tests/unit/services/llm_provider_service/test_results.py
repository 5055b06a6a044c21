"""One source for what passes through: the result is built once (`result_of`), its event from
it (`ComparisonResultData.from_result`), and the caller's pass-through fields travel as a
unit. The JSON of both is byte-identical to what the previous version wrote (copied below)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from common_core.api_models import ComparisonRequest, ComparisonResult, ErrorInfo, TokenUsage
from common_core.enums import EssayWinner, LLMProviderType, PresentationOrder
from common_core.events import ComparisonResultData
from common_core.pass_through import PassThrough
from services.llm_provider_service.models import Judgement
from services.llm_provider_service.providers.pricing import PriceTable
from services.llm_provider_service.result_deliveries import ResultDeliveries
from services.llm_provider_service.results import result_of
from tests.unit.services.llm_provider_service.test_job import FULL, PLAIN

MAIN_RESULT = (
    '{"request_id":"0b6a5f5e-2d7e-4c1c-8f55-2f3a3c0d9e11","correlation_id":"5f0c2c43-9e49-4a8e-'
    '9d0a-4d3f6c1b2a10","winner":"Essay A","justification":"A is clearer.","confidence":4,"prov'
    'ider":"mock","model":"mock-1","response_time_ms":12,"token_usage":{"prompt_tokens":10,"com'
    'pletion_tokens":5,"total_tokens":15,"cached_prompt_tokens":0,"cache_write_tokens":0,"cache'
    '_write_1h_tokens":0},"cost_estimate":0.001,"trace_id":"0af7651916cd43dd8448eb211c80319c","'
    'metadata":{"essay_a_id":"E01","essay_b_id":"E02"},"served_from_cache":false,"provider_requ'
    'est_id":"p-1","completed_at":"2026-12-06T12:00:01Z","presentation_order":"swapped"}'
)

MAIN_EVENT = (
    '{"event_id":"592a273b-d7fb-55d8-b887-415370622464","event_type":"llm_provider.comparison_r'
    'esult.v1","source_service":"llm_provider_service","schema_version":1,"correlation_id":"5f0'
    'c2c43-9e49-4a8e-9d0a-4d3f6c1b2a10","data":{"request_id":"0b6a5f5e-2d7e-4c1c-8f55-2f3a3c0d9'
    'e11","correlation_id":"5f0c2c43-9e49-4a8e-9d0a-4d3f6c1b2a10","winner":"Essay A","justifica'
    'tion":"A is clearer.","confidence":4,"error_detail":null,"provider":"mock","model":"mock-1'
    '","response_time_ms":12,"token_usage":{"prompt_tokens":10,"completion_tokens":5,"total_tok'
    'ens":15,"cached_prompt_tokens":0,"cache_write_tokens":0,"cache_write_1h_tokens":0},"cost_e'
    'stimate":0.0,"requested_at":"2026-12-06T12:00:00Z","completed_at":"2026-12-06T12:00:01Z","'
    'trace_id":"0af7651916cd43dd8448eb211c80319c","request_metadata":{"essay_a_id":"E01","essay'
    '_b_id":"E02","prompt_sha256":"62c65612c8e71d4ec869fee5962a664d7bc8865cc749847b242692cef879'
    '509f"},"presentation_order":"swapped","served_from_cache":false,"provider_request_id":"p-1'
    '","cost_estimate_known":false},"metadata":{"traceparent":"00-0af7651916cd43dd8448eb211c803'
    '19c-b7ad6b7169203331-01"}}'
)

MAIN_EVENTERR = (
    '{"event_id":"592a273b-d7fb-55d8-b887-415370622464","event_type":"llm_provider.comparison_r'
    'esult.v1","source_service":"llm_provider_service","schema_version":1,"correlation_id":"5f0'
    'c2c43-9e49-4a8e-9d0a-4d3f6c1b2a10","data":{"request_id":"0b6a5f5e-2d7e-4c1c-8f55-2f3a3c0d9'
    'e11","correlation_id":"5f0c2c43-9e49-4a8e-9d0a-4d3f6c1b2a10","winner":null,"justification"'
    ':null,"confidence":null,"error_detail":{"code":"PROVIDER_UNAVAILABLE","message":"down","de'
    'tails":{},"model":"m","token_usage":{"prompt_tokens":3,"completion_tokens":0,"total_tokens'
    '":0,"cached_prompt_tokens":0,"cache_write_tokens":0,"cache_write_1h_tokens":0},"error_code'
    '":"LLM_PROVIDER_UNAVAILABLE","correlation_id":"5f0c2c43-9e49-4a8e-9d0a-4d3f6c1b2a10","time'
    'stamp":"2026-12-06T12:00:02Z","service":"llm_provider_service","operation":"generate_compa'
    'rison"},"provider":"mock","model":"m","response_time_ms":0,"token_usage":{"prompt_tokens":'
    '3,"completion_tokens":0,"total_tokens":0,"cached_prompt_tokens":0,"cache_write_tokens":0,"'
    'cache_write_1h_tokens":0},"cost_estimate":0.0,"requested_at":"2026-12-06T12:00:00Z","compl'
    'eted_at":"2026-12-06T12:00:02Z","trace_id":"0af7651916cd43dd8448eb211c80319c","request_met'
    'adata":{"essay_a_id":"E01","essay_b_id":"E02","prompt_sha256":"84d12229825cbf0674caaea55de'
    '24a39efed5f716e1f123c95c482219dfe0be9"},"presentation_order":null,"served_from_cache":fals'
    'e,"provider_request_id":null,"cost_estimate_known":false},"metadata":{"traceparent":"00-0a'
    'f7651916cd43dd8448eb211c80319c-295de0327b9c5bba-01"}}'
)

DELIVERIES = ResultDeliveries(
    topic_prefix="huleedu",
    webhook_deadline_seconds=60,
    now=lambda: datetime(2026, 12, 6, 12, 0, 2, tzinfo=UTC),
)
RESULT = ComparisonResult(
    request_id=PLAIN.request_id,
    correlation_id=PLAIN.correlation_id,
    winner=EssayWinner.ESSAY_A,
    justification="A is clearer.",
    confidence=4,
    provider=LLMProviderType.MOCK,
    model="mock-1",
    response_time_ms=12,
    token_usage=TokenUsage(prompt_tokens=10, completion_tokens=5, total_tokens=15),
    cost_estimate=0.001,
    trace_id=PLAIN.trace_id,
    metadata=PLAIN.request.metadata,
    provider_request_id="p-1",
    completed_at=datetime(2026, 12, 6, 12, 0, 1, tzinfo=UTC),
    presentation_order=PresentationOrder.SWAPPED,
)


def test_the_result_body_is_byte_identical() -> None:
    assert RESULT.model_dump_json() == MAIN_RESULT


def test_the_result_event_is_byte_identical() -> None:
    envelope = DELIVERIES.envelope(FULL, result=RESULT)
    assert envelope.model_dump_json(exclude={"event_timestamp"}) == MAIN_EVENT


def test_the_error_event_is_byte_identical() -> None:
    error = ErrorInfo(
        code="PROVIDER_UNAVAILABLE",
        message="down",
        model="m",
        token_usage=TokenUsage(prompt_tokens=3),
    )
    envelope = DELIVERIES.envelope(PLAIN, error=error)
    assert envelope.model_dump_json(exclude={"event_timestamp"}) == MAIN_EVENTERR


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
    data = ComparisonResultData.from_result(
        result, requested_at=FULL.requested_at, prompt_sha256="d" * 64, cost_estimate=0.5
    )
    shared = set(ComparisonResult.model_fields) & set(ComparisonResultData.model_fields)
    for name in shared - {"cost_estimate"}:
        assert getattr(data, name) == getattr(result, name), name
    assert (data.cost_estimate, data.cost_estimate_known) == (0.5, True)
    assert data.request_metadata == {**FULL.request.metadata, "prompt_sha256": "d" * 64}


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
