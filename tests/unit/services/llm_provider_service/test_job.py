"""The stored job form across a rolling deploy, both ways: records the previous version
wrote (before the form number; `previous_version.py` holds them as it wrote them) read
unchanged here, what this version writes reads there, and a record of a newer version is
read with the fields this version does not know ignored and logged once."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from common_core.api_models import ComparisonRequest
from services.llm_provider_service.job import V1_REQUEST_FIELDS, ComparisonJob
from tests.unit.services.llm_provider_service.previous_version import (
    FULL,
    MINIMAL,
    STORED_FULL,
    STORED_MINIMAL,
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


CASES = {"minimal": (MINIMAL, STORED_MINIMAL), "full": (FULL, STORED_FULL)}


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
    form = 2 + int(new[1:], 16) % 1000
    stored["form"] = form
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
    newer_form = [r for r in caplog.records if f"stored job form {form} is newer" in r.getMessage()]
    assert len(newer_form) == 1
    assert any(f"job.request.llm_config_overrides.{new}_override" in line for line in logged)
    assert any(f"job.request.prompt_blocks[].{new}_block" in line for line in logged)
