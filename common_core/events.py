"""The event envelope and topic naming for everything the LLM Provider Service publishes."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, model_validator

from common_core.api_models import ComparisonResult, ErrorInfo, TokenUsage
from common_core.enums import (
    EssayWinner,
    LLMProviderType,
    PresentationOrder,
    QueueStatus,
    ServedVia,
)
from common_core.pass_through import PassThrough

DEFAULT_TOPIC_PREFIX = "huleedu"
SOURCE_SERVICE = "llm_provider_service"


class LLMProviderEvent(StrEnum):
    """Event names; each is also the middle of its topic name (see `topic_name`)."""

    REQUEST_STARTED = "request_started"
    REQUEST_COMPLETED = "request_completed"
    FAILURE = "failure"
    REQUEST_QUEUED = "request_queued"
    QUEUE_STATUS_CHANGED = "queue_status_changed"
    REQUEST_EXPIRED = "request_expired"
    COMPARISON_RESULT = "comparison_result"


def topic_name(event: LLMProviderEvent, prefix: str = DEFAULT_TOPIC_PREFIX) -> str:
    """`<prefix>.llm_provider.<event>.v1`, the one place topic names are spelled."""
    return f"{prefix}.llm_provider.{event.value}.v1"


def event_type_name(event: LLMProviderEvent) -> str:
    """`llm_provider.<event>.v1`, the envelope's `event_type`."""
    return f"llm_provider.{event.value}.v1"


DataT = TypeVar("DataT", bound=BaseModel)


class EventEnvelope(BaseModel, Generic[DataT]):
    """Every published event; `event_id` lets consumers drop at-least-once duplicates.
    Fields it does not know are kept (see `_PASS_ON_UNKNOWN`)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    event_id: UUID = Field(default_factory=uuid4)
    event_type: str
    event_timestamp: datetime = Field(default_factory=lambda: datetime.now(UTC))
    source_service: str = SOURCE_SERVICE
    schema_version: int = 1
    correlation_id: UUID
    data: DataT
    metadata: dict[str, Any] = Field(default_factory=dict)


# Event payloads. Consumers import these to read `EventEnvelope.data`.


class RequestStartedData(BaseModel):
    request_id: UUID
    provider: LLMProviderType
    model: str
    attempt: int = 1
    from_queue: bool = False


class RequestCompletedData(BaseModel):
    request_id: UUID
    provider: LLMProviderType
    model: str
    response_time_ms: int
    token_usage: TokenUsage
    cost_estimate: float | None = None


class FailureData(BaseModel):
    request_id: UUID
    provider: LLMProviderType
    error_code: str
    message: str
    retryable: bool


class RequestQueuedData(BaseModel):
    queue_id: UUID
    provider: LLMProviderType
    priority: int
    queued_at: datetime
    expires_at: datetime
    reason: str


class QueueStatusChangedData(BaseModel):
    queue_id: UUID
    provider: LLMProviderType
    status: QueueStatus
    attempts: int
    error: ErrorInfo | None = None


class RequestExpiredData(BaseModel):
    queue_id: UUID
    provider: LLMProviderType
    queued_at: datetime
    expires_at: datetime
    attempts: int


# Event models keep fields they do not know (extra="allow"): the relay parses a stored event
# and publishes it again, and must pass on what a newer replica added, not drop it.
_PASS_ON_UNKNOWN = ConfigDict(extra="allow")


class ResultErrorDetail(ErrorInfo):
    """`error_detail` of a result event: our `code` and `message`, with the fields of
    HuleEdu's platform-wide `ErrorDetail` beside them (`error_code` is the consumer's value
    for our code, `common_core.consumer_errors`). Always set when the service builds one;
    optional so that events stored before they existed still parse."""

    model_config = _PASS_ON_UNKNOWN

    error_code: str | None = None
    correlation_id: UUID | None = None
    timestamp: datetime | None = None
    service: str = SOURCE_SERVICE
    operation: str = "generate_comparison"


class ComparisonResultData(BaseModel):
    """The result event: the judgement's fields, or `error_detail`, never both, with the
    caller's pass-through fields (`PassThrough.event_fields`: `request_metadata`, and any
    later one under its own name, kept as an extra field).

    Published events always carry `model`, `response_time_ms`, `token_usage` and
    `cost_estimate` (an error event: what the failed attempts spent, zeros when nothing);
    `cost_estimate_known` is false when the model has no price and `cost_estimate` is 0.0.
    They are optional here only so that events from before these rules still parse.
    """

    model_config = _PASS_ON_UNKNOWN

    request_id: UUID
    correlation_id: UUID
    winner: EssayWinner | None = None
    justification: str | None = None
    confidence: int | None = None
    error_detail: ResultErrorDetail | None = None
    provider: LLMProviderType
    model: str | None = None
    response_time_ms: int | None = None
    token_usage: TokenUsage | None = None
    cost_estimate: float | None = None
    requested_at: datetime
    completed_at: datetime
    trace_id: str | None = None
    request_metadata: dict[str, Any] = Field(default_factory=dict)
    # Added after v1 (consumers ignore fields they do not know): as in the 200 body.
    presentation_order: PresentationOrder | None = None  # None in error events
    served_from_cache: bool = False
    provider_request_id: str | None = None
    cost_estimate_known: bool = True
    served_via: ServedVia = ServedVia.REALTIME  # as in the 200 body; error events: realtime

    @classmethod
    def from_result(
        cls, result: ComparisonResult, *, cost_estimate: float | None, **about_request: Any
    ) -> ComparisonResultData:
        """The result event of `result`: `about_request`, the fields the event takes from
        the request rather than from the result (its ids, `requested_at`, `trace_id`, and
        the caller's pass-through fields as events name them, `PassThrough.event_fields`);
        every other field the event shares with the result, from the result; and
        `cost_estimate` as events state it (`stated_cost`)."""
        judged = {name: getattr(result, name) for name in _FROM_RESULT if name not in about_request}
        return cls(**judged, **about_request, **stated_cost(cost_estimate, result.token_usage))

    @model_validator(mode="after")
    def _result_xor_error(self) -> ComparisonResultData:
        has_result = self.winner is not None
        if has_result == (self.error_detail is not None):
            raise ValueError("a result event carries either the result fields or error_detail")
        return self


# The result's fields an event copies as they are (the cost is stated its own way).
_FROM_RESULT = tuple(
    name
    for name in ComparisonResult.model_fields
    if name in ComparisonResultData.model_fields
    and name not in PassThrough.model_fields
    and name != "cost_estimate"
)


def stated_cost(cost_estimate: float | None, usage: TokenUsage) -> dict[str, Any]:
    """`cost_estimate` and `cost_estimate_known` as a result event states them: never null
    (a consumer's model requires a number); an unpriced model's spend is unknown, not free,
    so 0.0 with `cost_estimate_known` false (true when nothing was spent)."""
    return {
        "cost_estimate": cost_estimate if cost_estimate is not None else 0.0,
        "cost_estimate_known": cost_estimate is not None or usage == TokenUsage(),
    }
