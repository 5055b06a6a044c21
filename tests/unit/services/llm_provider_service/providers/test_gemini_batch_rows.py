"""The Gemini batch mapping tables: job states, entry errors, rows (no server)."""

from __future__ import annotations

import pytest
from google.genai import types

from common_core.enums import ErrorCode
from services.llm_provider_service.batch.models import BatchState, RowOutcome
from services.llm_provider_service.errors import (
    InvalidProviderResponseError,
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderUnavailableError,
)
from services.llm_provider_service.providers.gemini_batch_rows import (
    item_error,
    job_poll,
    job_rows,
    row_of,
)

S = types.JobState


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (S.JOB_STATE_PENDING, BatchState.RUNNING),
        (S.JOB_STATE_QUEUED, BatchState.RUNNING),
        (S.JOB_STATE_RUNNING, BatchState.RUNNING),
        (S.JOB_STATE_CANCELLING, BatchState.RUNNING),
        (S.JOB_STATE_SUCCEEDED, BatchState.ENDED),
        (S.JOB_STATE_PARTIALLY_SUCCEEDED, BatchState.ENDED),
        (S.JOB_STATE_FAILED, BatchState.FAILED),
        (S.JOB_STATE_EXPIRED, BatchState.EXPIRED),
        (S.JOB_STATE_CANCELLED, BatchState.CANCELLED),
        (None, BatchState.RUNNING),
    ],
)
def test_job_states(state: types.JobState | None, expected: BatchState) -> None:
    poll = job_poll(types.BatchJob(name="batches/x", state=state))
    assert poll.state is expected
    assert poll.provider_status == (state.value if state else "JOB_STATE_UNSPECIFIED")


@pytest.mark.parametrize(
    ("code", "retryable"), [(None, True), (429, True), (8, True), (400, False)]
)
def test_a_failed_job_is_retryable_unless_its_cause_is_our_request(
    code: int | None, retryable: bool
) -> None:
    error = types.JobError(code=code, message="why") if code is not None else None
    poll = job_poll(types.BatchJob(name="batches/x", state=S.JOB_STATE_FAILED, error=error))
    assert poll.state is BatchState.FAILED
    assert poll.retryable is retryable
    assert poll.error


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (400, ProviderBadRequestError),
        (404, ProviderBadRequestError),
        (422, ProviderBadRequestError),
        (3, ProviderBadRequestError),  # INVALID_ARGUMENT
        (9, ProviderBadRequestError),  # FAILED_PRECONDITION
        (429, ProviderUnavailableError),
        (8, ProviderUnavailableError),  # RESOURCE_EXHAUSTED
        (500, ProviderUnavailableError),
        (503, ProviderUnavailableError),
        (13, ProviderUnavailableError),  # INTERNAL
        (14, ProviderUnavailableError),  # UNAVAILABLE
        (4, ProviderUnavailableError),  # DEADLINE_EXCEEDED
        (None, ProviderUnavailableError),
        (16, ProviderAuthError),  # UNAUTHENTICATED
    ],
)
def test_entry_errors(code: int | None, kind: type) -> None:
    error = item_error(code, "message")
    assert type(error) is kind
    assert error.retryable is (kind is ProviderUnavailableError)


def _answer(
    text: str, finish: types.FinishReason = types.FinishReason.STOP
) -> types.InlinedResponse:
    content = types.Content(role="model", parts=[types.Part(text=text)])
    candidate = types.Candidate(content=content, finish_reason=finish)
    usage = types.GenerateContentResponseUsageMetadata(
        prompt_token_count=10, candidates_token_count=5, total_token_count=15
    )
    response = types.GenerateContentResponse(
        candidates=[candidate], usage_metadata=usage, response_id="r-1", model_version="m"
    )
    return types.InlinedResponse(response=response, metadata={"key": "k"})


def test_a_valid_answer_is_a_judgement() -> None:
    row = row_of("k", _answer('{"winner":"Essay B","justification":"x","confidence":4}'), "m")
    assert row.outcome is RowOutcome.SUCCEEDED
    assert row.judgement is not None
    assert (row.judgement.confidence, row.judgement.token_usage.total_tokens) == (4, 15)
    assert row.judgement.provider_request_id == "r-1"


@pytest.mark.parametrize(
    ("response", "code"),
    [
        (_answer('{"winner":"essay b"}'), ErrorCode.INVALID_PROVIDER_RESPONSE),
        (_answer("not json"), ErrorCode.INVALID_PROVIDER_RESPONSE),
        (types.InlinedResponse(metadata={"key": "k"}), ErrorCode.INVALID_PROVIDER_RESPONSE),
        (
            types.InlinedResponse(response=types.GenerateContentResponse(), metadata={}),
            ErrorCode.INVALID_PROVIDER_RESPONSE,
        ),
        (_answer('{"winner":', types.FinishReason.MAX_TOKENS), ErrorCode.MAX_TOKENS_TOO_LOW),
    ],
)
def test_a_bad_answer_is_an_errored_row_never_an_exception(
    response: types.InlinedResponse, code: ErrorCode
) -> None:
    row = row_of("k", response, "m")
    assert row.outcome is RowOutcome.ERRORED
    assert isinstance(row.error, InvalidProviderResponseError)
    assert row.error.code is code
    assert not row.error.retryable


def test_rows_are_named_by_key_and_unkeyed_responses_left_out() -> None:
    good = '{"winner":"Essay A","justification":"x","confidence":2}'
    responses = [
        _answer(good).model_copy(update={"metadata": {"key": "b", "index": "1"}}),
        _answer(good).model_copy(update={"metadata": {}}),
        _answer(good).model_copy(update={"metadata": {"key": "a", "index": "0"}}),
    ]
    job = types.BatchJob(
        name="batches/x", dest=types.BatchJobDestination(inlined_responses=responses)
    )
    assert [row.custom_id for row in job_rows(job, "m")] == ["b", "a"]
    assert list(job_rows(types.BatchJob(name="batches/y"), "m")) == []
