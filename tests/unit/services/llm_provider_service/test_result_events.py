"""The result event as consumers read it: error events carry a model, what was spent and a
cost, the consumer's error fields and the trace context; fields it does not know are kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from common_core.api_models import ErrorInfo, LLMConfigOverrides, TokenUsage
from common_core.enums import ErrorCode, LLMProviderType
from common_core.events import ComparisonResultData, EventEnvelope
from services.llm_provider_service.result_deliveries import ResultDeliveries
from tests.contract.huleedu_consumer import accepts
from tests.factories import make_job, make_request, make_result

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def deliveries() -> ResultDeliveries:
    return ResultDeliveries(
        topic_prefix="huleedu",
        webhook_deadline_seconds=60,
        default_models={LLMProviderType.OPENAI: "gpt-5.1"},
        now=lambda: NOW,
    )


def error_data(job: Any, error: ErrorInfo) -> ComparisonResultData:
    return deliveries().envelope(job, error=error).data


def test_an_error_event_names_the_model_asked_for_and_costs_nothing_when_nothing_was_spent():
    job = make_job(LLMProviderType.OPENAI)
    data = error_data(job, ErrorInfo(code="PROVIDER_AUTH_ERROR", message="bad key"))

    assert (data.model, data.response_time_ms, data.cost_estimate) == ("gpt-5.1", 0, 0.0)
    assert data.token_usage == TokenUsage()
    assert data.cost_estimate_known is True
    detail = data.error_detail
    assert detail is not None
    assert (detail.code, detail.error_code) == ("PROVIDER_AUTH_ERROR", "LLM_CONFIGURATION_ERROR")
    assert (detail.correlation_id, detail.timestamp) == (job.correlation_id, NOW)
    assert (detail.service, detail.operation) == ("llm_provider_service", "generate_comparison")


@pytest.mark.parametrize(
    ("provider", "override", "expected"),
    [
        (LLMProviderType.OPENAI, "gpt-4.1", "gpt-4.1"),  # the override
        (LLMProviderType.OPENAI, None, "gpt-5.1"),  # else the provider's default
        (LLMProviderType.GOOGLE, None, "unknown"),  # else "unknown"
    ],
)
def test_the_model_of_an_error_event(provider, override, expected):
    overrides = LLMConfigOverrides(model_override=override)
    job = make_job(provider, request=make_request(llm_config_overrides=overrides))
    assert error_data(job, ErrorInfo(code="INTERNAL_ERROR", message="")).model == expected


def test_what_failed_attempts_spent_is_reported_and_priced():
    spent = TokenUsage(prompt_tokens=1000, completion_tokens=200, total_tokens=1200)
    job = make_job(LLMProviderType.OPENAI)

    priced = error_data(
        job, ErrorInfo(code="INVALID_PROVIDER_RESPONSE", message="", token_usage=spent)
    )
    unpriced = error_data(
        job,
        ErrorInfo(code="INVALID_PROVIDER_RESPONSE", message="", token_usage=spent, model="gpt-99"),
    )

    assert priced.token_usage == spent
    assert priced.cost_estimate == pytest.approx((1000 * 1.25 + 200 * 10) / 1e6)
    assert (unpriced.model, unpriced.cost_estimate) == ("gpt-99", 0.0)
    assert unpriced.cost_estimate_known is False


def test_a_success_of_an_unpriced_model_costs_zero_said_to_be_unknown():
    job = make_job()
    result = make_result(job, model="house-model", cost_estimate=None)
    data = deliveries().envelope(job, result=result).data
    assert (data.cost_estimate, data.cost_estimate_known) == (0.0, False)


def test_the_envelope_carries_the_trace_context():
    job = make_job(trace_id=TRACE)
    envelope = deliveries().envelope(job, result=make_result(job))
    version, trace, span, flags = envelope.metadata["traceparent"].split("-")
    assert (version, trace, flags) == ("00", TRACE, "01")
    assert len(span) == 16
    assert deliveries().envelope(job, result=make_result(job)).metadata == envelope.metadata
    # A trace id that is not W3C's (32 hex, not all zero) gets no traceparent.
    assert (
        deliveries()
        .envelope(make_job(trace_id="trace-test"), error=ErrorInfo(code="X", message=""))
        .metadata
        == {}
    )


@pytest.mark.parametrize("kind", ["result", "error"])
def test_both_kinds_pass_the_consumers_validation(kind: str):
    job = make_job(LLMProviderType.OPENAI, trace_id=TRACE)
    if kind == "result":
        envelope = deliveries().envelope(job, result=make_result(job, cost_estimate=0.01))
    else:
        envelope = deliveries().envelope(
            job, error=ErrorInfo(code="REQUEST_EXPIRED", message="late")
        )
    accepts(envelope.model_dump_json())


def test_fields_a_newer_replica_added_survive_a_parse_and_dump():
    # The relay parses a stored event and publishes it again: it must not drop what it
    # does not know.
    job = make_job()
    raw = json.loads(deliveries().envelope(job, result=make_result(job)).model_dump_json())
    raw["envelope_extra"] = 1
    raw["data"]["data_extra"] = {"x": [1, 2]}
    raw["data"]["token_usage"]["usage_extra"] = 7
    again = json.loads(
        EventEnvelope[ComparisonResultData].model_validate_json(json.dumps(raw)).model_dump_json()
    )
    assert again == raw


@pytest.mark.parametrize("code", list(ErrorCode))
def test_an_error_event_for_every_code_passes_the_consumers_validation(code: ErrorCode):
    job = make_job(LLMProviderType.ANTHROPIC, trace_id=TRACE)
    envelope = deliveries().envelope(job, error=ErrorInfo(code=code.value, message="m"))
    result = accepts(envelope.model_dump_json())
    assert result.error_detail is not None
    assert result.error_detail.message == "m"
