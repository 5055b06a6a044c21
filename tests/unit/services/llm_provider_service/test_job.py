"""The stored job form across a rolling deploy, both ways: records the previous version wrote
(before the form number; copied below as it wrote them) read unchanged here, what this
version writes reads there, and a record of a newer version is read with the fields this
version does not know ignored and logged once."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from common_core.api_models import ComparisonRequest, PromptBlock
from common_core.enums import LLMProviderType, PresentationOrder
from services.llm_provider_service.job import V1_REQUEST_FIELDS, ComparisonJob

MAIN_PLAIN = (
    '{"request_id":"0b6a5f5e-2d7e-4c1c-8f55-2f3a3c0d9e11","correlation_id":"5f0c2c43-9e49-4a8e-'
    '9d0a-4d3f6c1b2a10","provider":"mock","request":{"user_prompt":"Which essay argues better? '
    '{essay_a} vs {essay_b}","essay_a":"Cats are independent.","essay_b":"Dogs are loyal.","llm'
    '_config_overrides":{"provider_override":"mock","model_override":null,"temperature_override'
    '":0.2,"max_tokens_override":null,"system_prompt_override":null,"reasoning_effort":null,"ou'
    'tput_verbosity":null},"correlation_id":"5f0c2c43-9e49-4a8e-9d0a-4d3f6c1b2a10","user_id":nu'
    'll,"metadata":{"essay_a_id":"E01","essay_b_id":"E02"},"processing_mode":"queue_if_unavaila'
    'ble","cache_mode":"none","priority":7,"ttl_seconds":null,"callback_topic":"cj.results","ca'
    'llback_url":"https://cj.example/hook","idempotency_key":null},"requested_at":"2026-12-06T1'
    '2:00:00Z","trace_id":"0af7651916cd43dd8448eb211c80319c","presentation_order":"as_sent","or'
    'der_randomized":false,"caller":null,"request_additions":{"essay_order":"randomized","promp'
    't_blocks":null}}'
)

MAIN_FULL = (
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

# How the previous version read a stored job: "request_additions" merged into the request,
# which it validated as a ComparisonRequest with exactly these fields (any other refused),
# and every job field it did not know ignored.
PREVIOUS_REQUEST_FIELDS = frozenset(
    {*V1_REQUEST_FIELDS, "essay_order", "prompt_blocks"},
)
PREVIOUS_JOB_FIELDS = frozenset(
    {
        "request_id",
        "correlation_id",
        "provider",
        "request",
        "requested_at",
        "trace_id",
        "presentation_order",
        "order_randomized",
        "caller",
        "trace_context",
    }
)


def read_as_the_previous_version(stored: str) -> ComparisonJob:
    data = json.loads(stored)
    request = {**data["request"], **data.get("request_additions", {})}
    assert set(request) <= PREVIOUS_REQUEST_FIELDS, "the previous version refuses the job"
    known = {name: value for name, value in data.items() if name in PREVIOUS_JOB_FIELDS}
    return ComparisonJob(**{**known, "request": ComparisonRequest.model_validate(request)})


def request(**fields: Any) -> ComparisonRequest:
    return ComparisonRequest(
        user_prompt="Which essay argues better? {essay_a} vs {essay_b}",
        essay_a="Cats are independent.",
        essay_b="Dogs are loyal.",
        correlation_id=uuid.UUID("5f0c2c43-9e49-4a8e-9d0a-4d3f6c1b2a10"),
        metadata={"essay_a_id": "E01", "essay_b_id": "E02"},
        llm_config_overrides={"provider_override": "mock", "temperature_override": 0.2},
        priority=7,
        callback_url="https://cj.example/hook",
        callback_topic="cj.results",
        **fields,
    )


def job(sent: ComparisonRequest, **fields: Any) -> ComparisonJob:
    return ComparisonJob(
        request_id=uuid.UUID("0b6a5f5e-2d7e-4c1c-8f55-2f3a3c0d9e11"),
        correlation_id=uuid.UUID("5f0c2c43-9e49-4a8e-9d0a-4d3f6c1b2a10"),
        provider=LLMProviderType.MOCK,
        request=sent,
        requested_at=datetime(2026, 12, 6, 12, 0, tzinfo=UTC),
        trace_id="0af7651916cd43dd8448eb211c80319c",
        **fields,
    )


BLOCKS = [
    PromptBlock(target="system", content="Rules.", cacheable=True, ttl="1h"),
    PromptBlock(target="user_content", content="Essay: {essay_a}", essay="a"),
]
PLAIN = job(request())
FULL = job(
    request(essay_order="as_sent", prompt_blocks=BLOCKS),
    presentation_order=PresentationOrder.SWAPPED,
    order_randomized=True,
    caller="cj_assessment",
    trace_context={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
)
CASES = {"plain": (PLAIN, MAIN_PLAIN), "full": (FULL, MAIN_FULL)}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_job_the_previous_version_stored_reads_unchanged(case: str) -> None:
    expected, stored = CASES[case]
    assert ComparisonJob.model_validate_json(stored) == expected


@pytest.mark.parametrize("case", sorted(CASES))
def test_this_version_stores_the_previous_form_with_its_number(case: str) -> None:
    written, previous = CASES[case]
    assert written.model_dump_json() == '{"form":1,' + previous.removeprefix("{")


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_previous_version_reads_what_this_version_stores(case: str) -> None:
    written, _ = CASES[case]
    assert read_as_the_previous_version(written.model_dump_json()) == written


def test_every_request_field_added_since_v1_is_stored_beside_the_request() -> None:
    stored = FULL.model_dump(mode="json")
    assert set(stored["request"]) == V1_REQUEST_FIELDS
    assert set(stored["request_additions"]) == set(ComparisonRequest.model_fields) - set(
        V1_REQUEST_FIELDS
    )


def test_a_job_of_a_newer_version_is_read_its_unknown_fields_ignored_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    new = f"x{uuid.uuid4().hex[:8]}"  # field names no other test has logged in this process
    stored = json.loads(FULL.model_dump_json())
    stored["form"] = 2
    stored[f"{new}_job"] = "a new job field"
    stored["request"][f"{new}_request"] = "a new v1-part field"
    stored["request_additions"][f"{new}_added"] = "a new request field"
    stored["request"]["llm_config_overrides"][f"{new}_override"] = 0.9
    stored["request_additions"]["prompt_blocks"][0][f"{new}_block"] = True
    newer = json.dumps(stored)

    with caplog.at_level(logging.WARNING, logger="services.llm_provider_service.job"):
        assert ComparisonJob.model_validate_json(newer) == FULL
        assert ComparisonJob.model_validate_json(newer) == FULL

    logged = [r.getMessage() for r in caplog.records if new in r.getMessage()]
    assert len(logged) == 5, logged  # one line per unknown field, not one per read
    assert any(f"job.request.llm_config_overrides.{new}_override" in line for line in logged)
    assert any(f"job.request.prompt_blocks[].{new}_block" in line for line in logged)
