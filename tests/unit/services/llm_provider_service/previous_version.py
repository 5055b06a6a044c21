"""What the previous version (before the stored job form had a number) wrote, copied below as
it wrote it, and the values it wrote it from: the fixtures of the rolling-deploy tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from common_core.api_models import ComparisonRequest, ComparisonResult, TokenUsage
from common_core.enums import EssayWinner, LLMProviderType, PresentationOrder
from services.llm_provider_service.models import ComparisonJob

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


def pinned_request(**fields: Any) -> ComparisonRequest:
    return ComparisonRequest(
        user_prompt="Which essay argues better? {essay_a} vs {essay_b}",
        essay_a="Cats are independent.",
        essay_b="Dogs are loyal.",
        correlation_id=uuid.UUID("5f0c2c43-9e49-4a8e-9d0a-4d3f6c1b2a10"),
        metadata={"essay_a_id": "E01", "essay_b_id": "E02"},
        llm_config_overrides={"provider_override": "mock", "temperature_override": 0.2},
        priority=7,
        **fields,
    )


def job_of(request: ComparisonRequest, **fields: Any) -> ComparisonJob:
    """A job of `request` with pinned ids and times; `fields` add to or replace them."""
    pinned: dict[str, Any] = {
        "request_id": uuid.UUID("0b6a5f5e-2d7e-4c1c-8f55-2f3a3c0d9e11"),
        "correlation_id": uuid.UUID("5f0c2c43-9e49-4a8e-9d0a-4d3f6c1b2a10"),
        "provider": LLMProviderType.MOCK,
        "request": request,
        "requested_at": datetime(2026, 12, 6, 12, 0, tzinfo=UTC),
        "trace_id": "t" * 32,
    }
    return ComparisonJob(**{**pinned, **fields})


BLOCKS = [
    {"target": "system", "content": "Rules.", "cacheable": True, "ttl": "1h"},
    {"target": "user_content", "content": "Essay: {essay_a}", "essay": "a"},
]
# A job at every default: no essays, overrides, callbacks, additions or trace context.
MINIMAL = job_of(ComparisonRequest(user_prompt="Compare the essays."), trace_id=TRACE_ID)
# A job using every field, the additions since v1 included.
FULL = job_of(
    pinned_request(
        callback_topic="cj.results",
        callback_url="https://cj.example/hook",
        essay_order="as_sent",
        prompt_blocks=BLOCKS,
    ),
    trace_id=TRACE_ID,
    presentation_order=PresentationOrder.SWAPPED,
    order_randomized=True,
    caller="cj_assessment",
    trace_context={"traceparent": f"00-{TRACE_ID}-b7ad6b7169203331-01"},
)
RESULT = ComparisonResult(
    request_id=FULL.request_id,
    correlation_id=FULL.correlation_id,
    winner=EssayWinner.ESSAY_A,
    justification="A is clearer.",
    confidence=4,
    provider=LLMProviderType.MOCK,
    model="mock-1",
    response_time_ms=12,
    token_usage=TokenUsage(prompt_tokens=10, completion_tokens=5, total_tokens=15),
    cost_estimate=0.001,
    trace_id=FULL.trace_id,
    metadata=FULL.request.metadata,
    provider_request_id="p-1",
    completed_at=datetime(2026, 12, 6, 12, 0, 1, tzinfo=UTC),
    presentation_order=PresentationOrder.SWAPPED,
)
# --- written by the previous version's code from the values above ---
STORED_MINIMAL = (
    '{"request_id":"0b6a5f5e-2d7e-4c1c-8f55-2f3a3c0d9e11","correlation_id":"5f0c2c43-9e49-4a8e-'
    '9d0a-4d3f6c1b2a10","provider":"mock","request":{"user_prompt":"Compare the essays.","essay'
    '_a":null,"essay_b":null,"llm_config_overrides":null,"correlation_id":null,"user_id":null,"'
    'metadata":{},"processing_mode":"queue_if_unavailable","cache_mode":"none","priority":5,"tt'
    'l_seconds":null,"callback_topic":null,"callback_url":null,"idempotency_key":null},"request'
    'ed_at":"2026-12-06T12:00:00Z","trace_id":"0af7651916cd43dd8448eb211c80319c","presentation_'
    'order":"as_sent","order_randomized":false,"caller":null,"request_additions":{"essay_order"'
    ':"randomized","prompt_blocks":null}}'
)

STORED_FULL = (
    '{"request_id":"0b6a5f5e-2d7e-4c1c-8f55-2f3a3c0d9e11","correlation_id":"5f0c2c43-9e49-4a8e-'
    '9d0a-4d3f6c1b2a10","provider":"mock","request":{"user_prompt":"Which essay argues better? '
    '{essay_a} vs {essay_b}","essay_a":"Cats are independent.","essay_b":"Dogs are loyal.","llm'
    '_config_overrides":{"provider_override":"mock","model_override":null,"temperature_override'
    '":0.2,"max_tokens_override":null,"system_prompt_override":null,"reasoning_effort":null,"ou'
    'tput_verbosity":null},"correlation_id":"5f0c2c43-9e49-4a8e-9d0a-4d3f6c1b2a10","user_id":nu'
    'll,"metadata":{"essay_a_id":"E01","essay_b_id":"E02"},"processing_mode":"queue_if_unavaila'
    'ble","cache_mode":"none","priority":7,"ttl_seconds":null,"callback_topic":"cj.results","ca'
    'llback_url":"https://cj.example/hook","idempotency_key":null},"requested_at":"2026-12-06T1'
    '2:00:00Z","trace_id":"0af7651916cd43dd8448eb211c80319c","presentation_order":"swapped","or'
    'der_randomized":true,"caller":"cj_assessment","trace_context":{"traceparent":"00-0af765191'
    '6cd43dd8448eb211c80319c-b7ad6b7169203331-01"},"request_additions":{"essay_order":"as_sent"'
    ',"prompt_blocks":[{"target":"system","content":"Rules.","cacheable":true,"ttl":"1h","conte'
    'nt_hash":null,"essay":null},{"target":"user_content","content":"Essay: {essay_a}","cacheab'
    'le":false,"ttl":"5m","content_hash":null,"essay":"a"}]}}'
)

RESULT_BODY = (
    '{"request_id":"0b6a5f5e-2d7e-4c1c-8f55-2f3a3c0d9e11","correlation_id":"5f0c2c43-9e49-4a8e-'
    '9d0a-4d3f6c1b2a10","winner":"Essay A","justification":"A is clearer.","confidence":4,"prov'
    'ider":"mock","model":"mock-1","response_time_ms":12,"token_usage":{"prompt_tokens":10,"com'
    'pletion_tokens":5,"total_tokens":15,"cached_prompt_tokens":0,"cache_write_tokens":0,"cache'
    '_write_1h_tokens":0},"cost_estimate":0.001,"trace_id":"0af7651916cd43dd8448eb211c80319c","'
    'metadata":{"essay_a_id":"E01","essay_b_id":"E02"},"served_from_cache":false,"provider_requ'
    'est_id":"p-1","completed_at":"2026-12-06T12:00:01Z","presentation_order":"swapped"}'
)

RESULT_EVENT = (
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

ERROR_EVENT = (
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
    'adata":{"essay_a_id":"E01","essay_b_id":"E02","prompt_sha256":"62c65612c8e71d4ec869fee5962'
    'a664d7bc8865cc749847b242692cef879509f"},"presentation_order":null,"served_from_cache":fals'
    'e,"provider_request_id":null,"cost_estimate_known":false},"metadata":{"traceparent":"00-0a'
    'f7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}'
)
