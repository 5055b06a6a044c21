"""A rolling deploy that adds a request field breaks nothing the running version relies on.

The version still running refuses request fields it does not know (`ComparisonRequest`
forbids extras) but ignores unknown fields of a stored job, and compares idempotency
fingerprints computed the way it computes them. These tests pin both against the forms of
the version before `essay_order` (v1): its request fields, and a fingerprint it stored.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from common_core.api_models import ComparisonRequest
from common_core.enums import PresentationOrder
from services.llm_provider_service import job as stored_job
from services.llm_provider_service.idempotency.fingerprint import fingerprint
from services.llm_provider_service.models import ComparisonJob
from tests.unit.services.llm_provider_service.previous_version import job_of, pinned_request

V1_REQUEST_FIELDS = (
    "user_prompt",
    "essay_a",
    "essay_b",
    "llm_config_overrides",
    "correlation_id",
    "user_id",
    "metadata",
    "processing_mode",
    "cache_mode",
    "priority",
    "ttl_seconds",
    "callback_topic",
    "callback_url",
    "idempotency_key",
)
# v1's fingerprint of `pinned_request()`, computed by that version's code.
V1_FINGERPRINT = "70201dcd1028da64b446f2561573464f657e224f30060024e30ad4341fecf897"
# v1's job fields; its ComparisonJob ignored unknown fields (pydantic's default).
BLOCKS = [{"target": "system", "content": "Rules.", "cacheable": True, "ttl": "1h"}]
V1_JOB_FIELDS = {"request_id", "correlation_id", "provider", "request", "requested_at", "trace_id"}


class V1Request(BaseModel):
    """The request as v1 reads it: exactly its fields, nothing else accepted."""

    model_config = ConfigDict(extra="forbid")
    user_prompt: str
    essay_a: str | None
    essay_b: str | None
    llm_config_overrides: dict[str, Any] | None
    correlation_id: uuid.UUID | None
    user_id: str | None
    metadata: dict[str, Any]
    processing_mode: str
    cache_mode: str
    priority: int
    ttl_seconds: int | None
    callback_topic: str | None
    callback_url: str | None
    idempotency_key: str | None


# The request fields added since v1 (stored in "request_additions").
ADDED_REQUEST_FIELDS = ("essay_order", "prompt_blocks")


def test_the_v1_field_list_is_the_request_without_the_added_fields() -> None:
    assert set(ComparisonRequest.model_fields) == {*V1_REQUEST_FIELDS, *ADDED_REQUEST_FIELDS}
    assert set(V1_REQUEST_FIELDS) == stored_job.V1_REQUEST_FIELDS


@pytest.mark.parametrize("sent", [{}, {"essay_order": "randomized"}], ids=["unset", "default"])
def test_a_request_that_does_not_use_an_added_field_keeps_its_v1_fingerprint(
    sent: dict[str, Any],
) -> None:
    assert fingerprint(pinned_request(**sent)) == V1_FINGERPRINT


@pytest.mark.parametrize("added", [{"essay_order": "as_sent"}, {"prompt_blocks": BLOCKS}])
def test_an_added_field_away_from_its_default_makes_another_request(added: dict[str, Any]) -> None:
    assert fingerprint(pinned_request(**added)) != V1_FINGERPRINT


@pytest.mark.parametrize(
    "added", [{"essay_order": "randomized"}, {"essay_order": "as_sent"}, {"prompt_blocks": BLOCKS}]
)
def test_v1_can_read_every_stored_job(added: dict[str, Any]) -> None:
    job = job_of(
        pinned_request(**added),
        presentation_order=PresentationOrder.SWAPPED,
        order_randomized=True,
        caller="cj_assessment",
    )
    stored = job.model_dump(mode="json")
    V1Request.model_validate(stored["request"])  # raises on any field v1 does not know
    assert set(stored) >= V1_JOB_FIELDS
    # What v1 cannot read it ignores; this version reads it all back.
    assert ComparisonJob.model_validate_json(job.model_dump_json()) == job


def test_a_job_stored_by_v1_reads_as_presented_as_sent() -> None:
    job = job_of(pinned_request())
    v1_stored = job.model_dump(mode="json")
    for name in ("presentation_order", "order_randomized", "request_additions", "caller"):
        v1_stored.pop(name)
    read = ComparisonJob.model_validate(v1_stored)
    assert read.presentation_order is PresentationOrder.AS_SENT
    assert read.order_randomized is False
    assert read.caller is None  # made before callers: only an open service shows it
    assert read.request == pinned_request()


TRACE_CONTEXT = {
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "tracestate": "vendor=abc",
}


def test_a_job_without_a_trace_context_is_stored_as_before() -> None:
    stored = job_of(pinned_request()).model_dump(mode="json")
    assert "trace_context" not in stored


def test_the_previous_version_reads_a_job_with_a_trace_context() -> None:
    traced = job_of(pinned_request(), trace_context=TRACE_CONTEXT)
    stored = traced.model_dump(mode="json")
    assert stored["trace_context"] == TRACE_CONTEXT
    # The trace context is the only addition: without it, the stored form is the one the
    # previous version writes and reads; and that version ignored unknown job fields.
    without = dict(stored)
    del without["trace_context"]
    assert without == job_of(pinned_request()).model_dump(mode="json")
    assert ComparisonJob.model_config.get("extra", "ignore") == "ignore"
    # This version reads it all back.
    assert ComparisonJob.model_validate_json(traced.model_dump_json()) == traced


def test_a_job_stored_before_traces_reads_without_a_trace_context() -> None:
    stored = job_of(pinned_request()).model_dump_json()
    read = ComparisonJob.model_validate_json(stored)
    assert read.trace_context is None
    assert read == job_of(pinned_request())
