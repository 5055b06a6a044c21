"""The pure reading of Message Batches objects: statuses, item errors and odd lines."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from common_core.enums import ErrorCode
from services.llm_provider_service.batch.models import BatchState, RowOutcome
from services.llm_provider_service.errors import (
    InvalidProviderResponseError,
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderUnavailableError,
)
from services.llm_provider_service.providers.anthropic_batch_rows import (
    item_error,
    poll_of,
    row_of,
)


def errored(kind: object, message: object = "went wrong", request_id: object = None) -> object:
    body = SimpleNamespace(type=kind, message=message)
    return SimpleNamespace(type="errored", error=SimpleNamespace(error=body, request_id=request_id))


@pytest.mark.parametrize(
    ("kind", "expected", "retryable"),
    [
        ("invalid_request_error", ProviderBadRequestError, False),
        ("not_found_error", ProviderBadRequestError, False),
        ("request_too_large", ProviderBadRequestError, False),
        ("authentication_error", ProviderAuthError, False),
        ("rate_limit_error", ProviderUnavailableError, True),
        ("api_error", ProviderUnavailableError, True),
        ("overloaded_error", ProviderUnavailableError, True),
        ("timeout_error", ProviderUnavailableError, True),
        ("a_type_added_later", ProviderUnavailableError, True),
        (None, ProviderUnavailableError, True),
    ],
)
def test_item_errors_are_final_or_retried_as_the_realtime_status_would_be(
    kind: object, expected: type, retryable: bool
) -> None:
    error = item_error(errored(kind))

    assert type(error) is expected
    assert error.retryable is retryable


def test_an_item_error_keeps_the_vendors_words_and_request_id() -> None:
    error = item_error(errored("invalid_request_error", "max_tokens: too big", "req_1"))

    assert "invalid_request_error: max_tokens: too big" in error.message
    assert error.details["provider_request_id"] == "req_1"


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("in_progress", BatchState.RUNNING),
        ("canceling", BatchState.RUNNING),
        ("ended", BatchState.ENDED),
        ("a_status_added_later", BatchState.RUNNING),
    ],
)
def test_statuses_map_to_the_engines_states(status: str, state: BatchState) -> None:
    poll = poll_of(SimpleNamespace(processing_status=status))

    assert (poll.state, poll.provider_status) == (state, status)


def test_a_batch_without_a_status_is_polled_again() -> None:
    poll = poll_of(SimpleNamespace())

    assert (poll.state, poll.provider_status) == (BatchState.RUNNING, "unknown")


def test_a_line_without_a_custom_id_is_skipped() -> None:
    assert row_of(SimpleNamespace(result=SimpleNamespace(type="expired")), "m") is None
    assert row_of(SimpleNamespace(custom_id=7, result=None), "m") is None


@pytest.mark.parametrize("result", [None, SimpleNamespace(type="archived")])
def test_a_result_of_unknown_shape_is_an_invalid_response(result: object) -> None:
    row = row_of(SimpleNamespace(custom_id="abc", result=result), "m")

    assert row is not None
    assert row.outcome is RowOutcome.ERRORED
    assert isinstance(row.error, InvalidProviderResponseError)


class _Unreadable:
    """A message whose fields raise when read (the SDK builds result lines unchecked)."""

    @property
    def content(self) -> object:
        raise KeyError("content")


@pytest.mark.parametrize(
    "message", [None, "text", SimpleNamespace(content=7, usage=None), _Unreadable()]
)
def test_a_succeeded_line_without_a_readable_message_is_an_invalid_response(
    message: object,
) -> None:
    row = row_of(SimpleNamespace(custom_id="abc", result=SimpleNamespace(
        type="succeeded", message=message
    )), "m")  # fmt: skip

    assert row is not None
    assert row.outcome is RowOutcome.ERRORED
    assert row.error is not None
    assert row.error.code is ErrorCode.INVALID_PROVIDER_RESPONSE


def test_an_ended_batch_whose_results_were_archived_has_failed_retryably() -> None:
    archived = SimpleNamespace(processing_status="ended", archived_at=datetime.now(UTC))

    poll = poll_of(archived)

    assert (poll.state, poll.provider_status) == (BatchState.FAILED, "ended")
    assert poll.retryable
    assert poll.error is not None
    assert "archived" in poll.error
