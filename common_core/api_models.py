"""Request and response models of the LLM Provider Service's public HTTP API (v1).

Field names are part of the contract with existing clients (CJ Assessment, AI Feedback):
add fields, never rename them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from common_core.enums import (
    CacheMode,
    CircuitBreakerState,
    DeliveryChannel,
    DeliveryState,
    EssayOrder,
    EssayWinner,
    HealthStatus,
    LLMProviderType,
    OutputVerbosity,
    PresentationOrder,
    ProcessingMode,
    QueueStatus,
    ReasoningEffort,
    ServedVia,
)
from common_core.pass_through import PassThrough

# PromptBlock is part of the public request model: clients import it from here.
from common_core.prompt_blocks import PromptBlock as PromptBlock
from common_core.prompt_blocks import check_blocks, not_blank

JUSTIFICATION_MAX_CHARS = 500
MIN_PRIORITY = 0
MAX_PRIORITY = 10
DEFAULT_PRIORITY = 5


class LLMConfigOverrides(BaseModel):
    """Per-request overrides of the provider's defaults; every field survives the queue."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider_override: LLMProviderType | None = None
    model_override: str | None = Field(default=None, min_length=1, max_length=200)
    temperature_override: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens_override: int | None = Field(default=None, gt=0, le=1_000_000)
    system_prompt_override: str | None = Field(default=None, max_length=100_000)
    reasoning_effort: ReasoningEffort | None = None
    output_verbosity: OutputVerbosity | None = None


class _RequestHead(BaseModel):
    """The request's fields before the pass-through ones, in their JSON order."""

    user_prompt: str = Field(max_length=1_000_000)
    essay_a: str | None = None
    essay_b: str | None = None
    llm_config_overrides: LLMConfigOverrides | None = None
    correlation_id: UUID | None = None
    user_id: str | None = Field(default=None, max_length=256)


# The request's fields, in JSON order: `_RequestHead`'s, the caller's `PassThrough` fields
# (echoed in the result and its event), then its own (pydantic orders base fields first).
class ComparisonRequest(PassThrough, _RequestHead):
    """Body of `POST /api/v1/comparison`. Unknown fields are refused, so a typo never vanishes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    processing_mode: ProcessingMode = ProcessingMode.QUEUE_IF_UNAVAILABLE
    cache_mode: CacheMode = CacheMode.NONE
    priority: int = Field(default=DEFAULT_PRIORITY, ge=MIN_PRIORITY, le=MAX_PRIORITY)
    ttl_seconds: int | None = Field(default=None, gt=0)
    callback_topic: str | None = Field(default=None, min_length=1, max_length=249)
    callback_url: str | None = Field(default=None, min_length=1, max_length=2048)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=255)
    # With both essays given, "randomized" presents them swapped for about half the requests,
    # so a judge's preference for the first- (or second-) presented essay cancels out.
    essay_order: EssayOrder = EssayOrder.RANDOMIZED
    # When given, the prompt: system blocks, then user_content blocks (else user_prompt).
    prompt_blocks: list[PromptBlock] | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("user_prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str) -> str:
        return not_blank(value)

    @field_validator("prompt_blocks")
    @classmethod
    def _blocks_agree(cls, value: list[PromptBlock] | None) -> list[PromptBlock] | None:
        return None if value is None else check_blocks(value)


class TokenUsage(BaseModel):
    """Tokens of one judgement (its re-asks included). `prompt_tokens` counts every input
    token; of those, `cached_prompt_tokens` were read from the provider's prompt cache and
    `cache_write_tokens` written to it (`cache_write_1h_tokens` of them with the 1-hour TTL).
    Fields it does not know are kept: it travels inside result events, which the relay
    passes on whole (`common_core.events`)."""

    model_config = ConfigDict(extra="allow")

    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    total_tokens: int = Field(default=0, ge=0)
    cached_prompt_tokens: int = Field(default=0, ge=0)
    cache_write_tokens: int = Field(default=0, ge=0)
    cache_write_1h_tokens: int = Field(default=0, ge=0)


class _ResultHead(BaseModel):
    """The result's fields before the pass-through ones, in their JSON order."""

    request_id: UUID
    correlation_id: UUID
    winner: EssayWinner
    justification: str = Field(max_length=JUSTIFICATION_MAX_CHARS)
    confidence: int = Field(ge=1, le=5)
    provider: LLMProviderType
    model: str
    response_time_ms: int = Field(ge=0)
    token_usage: TokenUsage
    cost_estimate: float | None = None
    trace_id: str | None = None


# The result's fields, in JSON order: `_ResultHead`'s, the caller's `PassThrough` fields as
# the request sent them, then its own.
class ComparisonResult(PassThrough, _ResultHead):
    """The 200 body, and the `result` of a completed queued request."""

    served_from_cache: bool = False
    provider_request_id: str | None = None
    completed_at: datetime
    # How the provider saw the essays; `winner` and `justification` are always in the
    # caller's terms whatever the order (results stored before essay order existed: as_sent).
    presentation_order: PresentationOrder = PresentationOrder.AS_SENT
    # The lane that produced it, each a fresh call for this request alone: a standard call,
    # the provider's flex tier, or its Batch API; `cost_estimate` is that lane's price.
    # Results stored before lanes existed: realtime.
    served_via: ServedVia = ServedVia.REALTIME


class QueuedResponse(BaseModel):
    """The 202 body: the request is durably queued and will be answered later."""

    queue_id: UUID
    correlation_id: UUID
    status: Literal[QueueStatus.QUEUED] = QueueStatus.QUEUED
    status_url: str
    queued_at: datetime
    expires_at: datetime
    position_in_queue: int | None = None
    estimated_wait_seconds: float | None = None


class ErrorInfo(BaseModel):
    """Why a request failed or expired: the stable `code` and a message; `details` as in the
    error responses, and, when a provider was called, the `model` asked for and the tokens
    the failed attempts spent (re-asks of invalid answers are billed)."""

    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)
    model: str | None = None
    token_usage: TokenUsage | None = None


class DeliveryStatus(BaseModel):
    """Where one result delivery stands (a Kafka topic or a webhook)."""

    channel: DeliveryChannel
    destination: str
    state: DeliveryState
    attempts: int
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None


class QueueStatusResponse(BaseModel):
    """Body of `GET /api/v1/status/<queue_id>`."""

    queue_id: UUID
    correlation_id: UUID
    status: QueueStatus
    provider: LLMProviderType
    queued_at: datetime
    updated_at: datetime
    expires_at: datetime
    attempts: int
    position_in_queue: int | None = None
    result: ComparisonResult | None = None
    error: ErrorInfo | None = None
    deliveries: list[DeliveryStatus] = Field(default_factory=list)


class ModelPositionBias(BaseModel):
    """How often one provider's model preferred the essay it was shown first, counted over
    requests whose essay order the service randomized (so order is independent of quality)."""

    provider: LLMProviderType
    model: str
    judgements: int
    first_position_wins: int
    first_position_share: float
    ci95_low: float  # Wilson score interval of the share
    ci95_high: float
    p_value: float  # exact two-sided binomial test against 0.5 (no position bias)


class PositionBiasReport(BaseModel):
    """Body of `GET /api/v1/position-bias`: one entry per provider and model."""

    models: list[ModelPositionBias]


class ErrorDetail(BaseModel):
    code: str
    message: str
    correlation_id: UUID | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(BaseModel):
    """The one error shape of every endpoint."""

    error: ErrorDetail


class ProviderStatus(BaseModel):
    name: LLMProviderType
    enabled: bool
    configured: bool
    available: bool
    circuit_breaker_state: CircuitBreakerState
    default_model: str
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    last_error: str | None = None
    queued_count: int | None = None


class ProvidersResponse(BaseModel):
    providers: list[ProviderStatus]


class ProviderTestResponse(BaseModel):
    success: bool
    provider: LLMProviderType
    message: str
    response_time_ms: int


class DependencyHealth(BaseModel):
    status: HealthStatus
    detail: str | None = None


class HealthResponse(BaseModel):
    status: HealthStatus
    environment: str
    queue_depth: int | None = None
    dependencies: dict[str, DependencyHealth]


class LivenessResponse(BaseModel):
    """`GET /livez`: the process and its event loop answer; depends on nothing else."""

    status: Literal["alive"] = "alive"


class ReadinessResponse(BaseModel):
    """`GET /readyz`: whether this replica can take requests (200) or not (503), with each
    check's status (`healthy` or `unhealthy`) and detail."""

    ready: bool
    checks: dict[str, DependencyHealth]
