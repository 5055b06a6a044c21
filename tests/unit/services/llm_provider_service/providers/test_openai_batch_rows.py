"""The pure mappings of the OpenAI and OpenRouter Batch APIs: a result row as a `BatchRow`, and
an OpenRouter batch object as a `BatchPoll`."""

from __future__ import annotations

from typing import Any

import pytest

from common_core.enums import ErrorCode, LLMProviderType
from services.llm_provider_service.batch.models import BatchState, RowOutcome
from services.llm_provider_service.errors import (
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderUnavailableError,
)
from services.llm_provider_service.providers.openai_batch_rows import (
    row_from_line,
    row_from_object,
)
from services.llm_provider_service.providers.openrouter_batch import poll_of

OPENAI = LLMProviderType.OPENAI


def _completion(content: str | None, finish_reason: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-x-2025",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "finish_reason": finish_reason,
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def _row(status: int, body: object) -> dict[str, Any]:
    return {"custom_id": "c1", "response": {"status_code": status, "body": body}, "error": None}


GOOD = '{"winner":"Essay B","justification":"clearer","confidence":3}'


def test_a_200_row_is_the_judgement_with_its_usage_and_request_id() -> None:
    row = row_from_object(OPENAI, _row(200, _completion(GOOD)), "gpt-x")
    assert row is not None
    assert row.outcome is RowOutcome.SUCCEEDED
    assert row.judgement is not None
    assert (row.judgement.model, row.judgement.provider_request_id) == ("gpt-x-2025", "chatcmpl-1")
    assert row.judgement.token_usage.total_tokens == 15


@pytest.mark.parametrize(
    "body",
    [
        _completion('{"winner":"essay b","justification":"x","confidence":3}'),
        _completion(GOOD[:20], "length"),
        {"not": "a completion"},
        "plain text",
    ],
)
def test_a_200_row_outside_the_schema_is_an_invalid_response(body: object) -> None:
    row = row_from_object(OPENAI, _row(200, body), "gpt-x")
    assert row is not None
    assert row.outcome is RowOutcome.ERRORED
    assert row.error is not None
    assert row.error.code == ErrorCode.INVALID_PROVIDER_RESPONSE
    assert not row.error.retryable


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (400, ProviderBadRequestError, False),
        (404, ProviderBadRequestError, False),
        (422, ProviderBadRequestError, False),
        (401, ProviderAuthError, False),
        (429, ProviderUnavailableError, True),
        (503, ProviderUnavailableError, True),
    ],
)
def test_an_error_status_row_maps_as_a_realtime_status(status, kind, retryable) -> None:
    row = row_from_object(OPENAI, _row(status, {"error": {"message": "no"}}), "gpt-x")
    assert row is not None
    assert isinstance(row.error, kind)
    assert row.error.retryable is retryable


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        ("batch_expired", RowOutcome.NOT_RUN),
        ("batch_cancelled", RowOutcome.NOT_RUN),
        ("something_new", RowOutcome.ERRORED),
    ],
)
def test_a_row_without_a_response_is_not_run_or_a_retryable_error(code, outcome) -> None:
    data = {"custom_id": "c1", "response": None, "error": {"code": code, "message": "m"}}
    row = row_from_object(OPENAI, data, "gpt-x")
    assert row is not None
    assert row.outcome is outcome
    assert row.error is None or row.error.retryable


@pytest.mark.parametrize("line", [b"not json", b'{"response": null}', b"[1, 2]"])
def test_a_line_naming_no_entry_is_skipped(line: bytes) -> None:
    assert row_from_line(OPENAI, line, "gpt-x") is None


@pytest.mark.parametrize(
    ("batch", "state", "retryable"),
    [
        ({"status": "validating"}, BatchState.RUNNING, False),
        ({"status": "finalizing"}, BatchState.RUNNING, False),
        ({"status": "completed"}, BatchState.ENDED, False),
        ({"status": "expired"}, BatchState.EXPIRED, False),
        ({"status": "cancelled"}, BatchState.CANCELLED, False),
        ({"status": "failed", "error": {"message": "bad schema"}}, BatchState.FAILED, False),
        ({"status": "failed", "error": {"message": "Rate limit hit"}}, BatchState.FAILED, True),
    ],
)
def test_openrouter_statuses_map_to_batch_states(batch, state, retryable) -> None:
    poll = poll_of(batch)
    assert (poll.state, poll.provider_status, poll.retryable) == (state, batch["status"], retryable)
