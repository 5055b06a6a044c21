"""How a Gemini batch job reads in the batch lane's terms: its state, and each inline response.

Pure functions over the google-genai SDK's `BatchJob` / `InlinedResponse`, so the mapping
tables (research §8.6) are tested without a server. Each response is read by the realtime
adapter's own `read_judgement` under the guard `ask_until_valid` puts around it (any other
shape of body is `InvalidProviderResponseError`), so a row is checked exactly as a realtime
answer is, and never raises.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

from google.genai import types

from common_core.enums import ErrorCode, LLMProviderType
from services.llm_provider_service.batch.models import BatchPoll, BatchRow, BatchState, RowOutcome
from services.llm_provider_service.errors import (
    InvalidProviderResponseError,
    MaxTokensTooLowError,
    ProviderError,
    ServiceError,
)
from services.llm_provider_service.models import Judgement
from services.llm_provider_service.providers.gemini_answer import read_judgement, read_usage
from services.llm_provider_service.providers.http_errors import error_for_status

logger = logging.getLogger(__name__)

_PROVIDER = LLMProviderType.GOOGLE
KEY = "key"  # the entry's custom id, in each inline request's `metadata`
INDEX = "index"  # its position in the create call, as a cross-check of the response order

# `JobState` (the SDK's name for the wire's BATCH_STATE_*) -> the engine's state. Anything
# not named here (pending, queued, running, cancelling, paused, updating, unspecified)
# is still RUNNING.
_TERMINAL: dict[types.JobState, BatchState] = {
    types.JobState.JOB_STATE_SUCCEEDED: BatchState.ENDED,
    types.JobState.JOB_STATE_PARTIALLY_SUCCEEDED: BatchState.ENDED,
    types.JobState.JOB_STATE_FAILED: BatchState.FAILED,
    types.JobState.JOB_STATE_EXPIRED: BatchState.EXPIRED,  # 48 h: no results at all
    types.JobState.JOB_STATE_CANCELLED: BatchState.CANCELLED,
}
# gRPC canonical codes, for errors given as a `google.rpc.Status` rather than an HTTP status.
_GRPC_AS_HTTP: dict[int, int] = {
    1: 499,  # CANCELLED
    2: 500,  # UNKNOWN
    3: 400,  # INVALID_ARGUMENT
    4: 504,  # DEADLINE_EXCEEDED
    5: 404,  # NOT_FOUND
    7: 403,  # PERMISSION_DENIED
    8: 429,  # RESOURCE_EXHAUSTED
    9: 400,  # FAILED_PRECONDITION
    10: 409,  # ABORTED
    11: 400,  # OUT_OF_RANGE
    12: 501,  # UNIMPLEMENTED
    13: 500,  # INTERNAL
    14: 503,  # UNAVAILABLE
    16: 401,  # UNAUTHENTICATED
}


def job_poll(job: types.BatchJob) -> BatchPoll:
    """One look at a job. A FAILED job's cause is not exposed by google-genai on the
    Developer API (its `error` is only read for Vertex); when it is unknown the failure is
    taken as the vendor's (per-entry problems come back per entry, not as a failed job), so
    `retryable` is True and the entries go back to the queue unspent."""
    status = job.state.value if job.state is not None else "JOB_STATE_UNSPECIFIED"
    state = _TERMINAL.get(job.state, BatchState.RUNNING) if job.state else BatchState.RUNNING
    if state is not BatchState.FAILED:
        return BatchPoll(state=state, provider_status=status)
    error = job.error
    if error is None or error.code is None:
        return BatchPoll(
            state=state,
            provider_status=status,
            error="gemini reported the batch FAILED without a cause",
            retryable=True,
        )
    cause = item_error(error.code, error.message)
    text = f"gemini batch failed: {error.code} {error.message or ''}".strip()
    return BatchPoll(state=state, provider_status=status, error=text, retryable=cause.retryable)


def item_error(code: int | None, message: str | None) -> ProviderError:
    """An inline response's `error` as the service's error: 400/404/422 (or INVALID_ARGUMENT
    and its kin) are our request's fault and final; 429, 5xx (RESOURCE_EXHAUSTED,
    INTERNAL, UNAVAILABLE, ...) are retryable. An error without a code is retryable."""
    status = _GRPC_AS_HTTP.get(code, code) if code is not None and code < 100 else code
    return error_for_status(_PROVIDER, status or 500, message or "batch entry failed")


def job_rows(job: types.BatchJob, model: str) -> Iterator[BatchRow]:
    """The rows of an ended job, in the order given, named by their `metadata.key`; a
    response without one cannot be placed and is left out (the engine counts its entry
    missing). Responses should come in input order: one that does not is logged, never
    trusted over its key."""
    responses: Sequence[types.InlinedResponse] = (
        job.dest.inlined_responses or [] if job.dest is not None else []
    )
    out_of_order = 0
    for position, response in enumerate(responses):
        metadata = response.metadata or {}
        key = metadata.get(KEY)
        if not key:
            logger.warning("gemini batch %s: response %d has no metadata key", job.name, position)
            continue
        if metadata.get(INDEX) not in (None, str(position)):
            out_of_order += 1
        yield row_of(key, response, model)
    if out_of_order:
        logger.warning(
            "gemini batch %s: %d responses out of input order (matched by key)",
            job.name,
            out_of_order,
        )


def row_of(custom_id: str, response: types.InlinedResponse, model: str) -> BatchRow:
    """One inline response as a row; never raises."""
    if response.error is not None:
        error = item_error(response.error.code, response.error.message)
        return BatchRow(custom_id, RowOutcome.ERRORED, error=error)
    if response.response is None:
        missing = InvalidProviderResponseError(
            _PROVIDER, "gemini batch entry has neither a response nor an error"
        )
        return BatchRow(custom_id, RowOutcome.ERRORED, error=missing)
    try:
        judgement = read_row(response.response, model)
    except ProviderError as exc:
        return BatchRow(custom_id, RowOutcome.ERRORED, error=exc)
    return BatchRow(custom_id, RowOutcome.SUCCEEDED, judgement=judgement)


def read_row(response: types.GenerateContentResponse, model: str) -> Judgement:
    """The judgement in one entry's answer, read as the realtime call reads one (without
    re-asks: a batch entry is asked once). Raises only `ProviderError`s: an answer cut at
    the token limit is `InvalidProviderResponseError` with the code MAX_TOKENS_TOO_LOW."""
    try:
        usage = read_usage(response)
    except Exception:  # the judgement step reports what is wrong with the body
        usage = read_usage(types.GenerateContentResponse())
    try:
        return read_judgement(response, model, usage)
    except MaxTokensTooLowError as exc:
        cut = InvalidProviderResponseError(_PROVIDER, exc.message, details=exc.details)
        cut.spent = usage
        raise cut.with_code(ErrorCode.MAX_TOKENS_TOO_LOW) from exc
    except ProviderError as exc:
        exc.spent = usage
        raise
    except ServiceError as exc:
        raise InvalidProviderResponseError(_PROVIDER, exc.message) from exc
    except Exception as exc:  # a body of another shape than an answer
        raise InvalidProviderResponseError(
            _PROVIDER,
            f"gemini answered with a body of an unexpected shape ({type(exc).__name__})",
        ) from exc
