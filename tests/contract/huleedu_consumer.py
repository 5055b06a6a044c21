"""The first consumer, HuleEdu's CJ Assessment as deployed: what it sends, and its models of
what it accepts, written from its published field lists and constraints
(`../shared/research/huleedu-consumer.md`, read at its commit 52468214), not from its code.

Its callback handler validates the envelope, then `data` with `LLMComparisonResultV1`, and
drops (logs and acknowledges) any event that fails: so every result event the service
publishes must validate here.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class HuleEduErrorCode(StrEnum):
    """Its platform-wide error codes: the LLM-specific ones and the generic ones."""

    LLM_PROVIDER_UNAVAILABLE = "LLM_PROVIDER_UNAVAILABLE"
    LLM_PROVIDER_RATE_LIMIT = "LLM_PROVIDER_RATE_LIMIT"
    LLM_PROVIDER_TIMEOUT = "LLM_PROVIDER_TIMEOUT"
    LLM_PROVIDER_API_ERROR = "LLM_PROVIDER_API_ERROR"
    LLM_INVALID_PROMPT = "LLM_INVALID_PROMPT"
    LLM_CONTENT_TOO_LONG = "LLM_CONTENT_TOO_LONG"
    LLM_INVALID_CONFIG = "LLM_INVALID_CONFIG"
    LLM_QUEUE_FULL = "LLM_QUEUE_FULL"
    LLM_INTERNAL_ERROR = "LLM_INTERNAL_ERROR"
    LLM_CALLBACK_TOPIC_MISSING = "LLM_CALLBACK_TOPIC_MISSING"
    LLM_INVALID_CALLBACK_TOPIC = "LLM_INVALID_CALLBACK_TOPIC"
    LLM_PARSING_ERROR = "LLM_PARSING_ERROR"
    LLM_INVALID_RESPONSE = "LLM_INVALID_RESPONSE"
    LLM_COST_LIMIT_EXCEEDED = "LLM_COST_LIMIT_EXCEEDED"
    LLM_CONFIGURATION_ERROR = "LLM_CONFIGURATION_ERROR"
    UNKNOWN_ERROR = "UNKNOWN_ERROR"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    RESOURCE_NOT_FOUND = "RESOURCE_NOT_FOUND"
    CONFIGURATION_ERROR = "CONFIGURATION_ERROR"
    EXTERNAL_SERVICE_ERROR = "EXTERNAL_SERVICE_ERROR"
    KAFKA_PUBLISH_ERROR = "KAFKA_PUBLISH_ERROR"
    LLM_PROVIDER_SERVICE_ERROR = "LLM_PROVIDER_SERVICE_ERROR"
    MISSING_REQUIRED_FIELD = "MISSING_REQUIRED_FIELD"
    INVALID_CONFIGURATION = "INVALID_CONFIGURATION"
    TIMEOUT = "TIMEOUT"
    CONNECTION_ERROR = "CONNECTION_ERROR"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    RATE_LIMIT = "RATE_LIMIT"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    AUTHENTICATION_ERROR = "AUTHENTICATION_ERROR"
    AUTHORIZATION_ERROR = "AUTHORIZATION_ERROR"
    INVALID_API_KEY = "INVALID_API_KEY"
    INVALID_REQUEST = "INVALID_REQUEST"
    INVALID_RESPONSE = "INVALID_RESPONSE"
    PARSING_ERROR = "PARSING_ERROR"
    CIRCUIT_BREAKER_OPEN = "CIRCUIT_BREAKER_OPEN"
    REQUEST_QUEUED = "REQUEST_QUEUED"
    PROCESSING_ERROR = "PROCESSING_ERROR"
    INITIALIZATION_FAILED = "INITIALIZATION_FAILED"


class HuleEduErrorDetail(BaseModel):
    error_code: HuleEduErrorCode
    message: str
    correlation_id: uuid.UUID
    timestamp: datetime
    service: str
    operation: str
    details: dict[str, Any] = Field(default_factory=dict)
    stack_trace: str | None = None
    trace_id: str | None = None
    span_id: str | None = None


class HuleEduTokenUsage(BaseModel):
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    total_tokens: int = Field(default=0, ge=0)


class LLMComparisonResultV1(BaseModel):
    """`data` of a result event. Extra fields are ignored; nothing here may be null that is
    not optional in the published model."""

    model_config = ConfigDict(extra="ignore")

    request_id: str
    correlation_id: uuid.UUID
    winner: Literal["Essay A", "Essay B"] | None = None
    justification: str | None = Field(default=None, max_length=500)
    confidence: float | None = Field(default=None, ge=1, le=5)
    error_detail: HuleEduErrorDetail | None = None
    provider: Literal["anthropic", "openai", "google", "openrouter", "mock"]
    model: str
    response_time_ms: int = Field(ge=0)
    token_usage: HuleEduTokenUsage
    cost_estimate: float = Field(ge=0)
    requested_at: datetime
    completed_at: datetime
    trace_id: str | None = None
    request_metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _success_xor_error(self) -> LLMComparisonResultV1:
        success = (self.winner, self.justification, self.confidence)
        if all(v is not None for v in success) == (self.error_detail is not None):
            raise ValueError("exactly one of the success fields (all three) or error_detail")
        if self.error_detail is None and any(v is None for v in success):
            raise ValueError("winner, justification and confidence come together")
        return self


class HuleEduEnvelope(BaseModel):
    event_id: uuid.UUID
    event_type: str
    event_timestamp: datetime
    source_service: str
    schema_version: int = 1
    correlation_id: uuid.UUID
    data_schema_uri: str | None = None
    data: Any
    metadata: dict[str, Any] | None = None


def accepts(raw: str | bytes) -> LLMComparisonResultV1:
    """What CJ's callback handler does with a record: the envelope, then `data`. Raises
    pydantic's `ValidationError` where CJ would drop the event."""
    envelope = HuleEduEnvelope.model_validate_json(raw)
    return LLMComparisonResultV1.model_validate(envelope.data)


def _block(target: str, content: str, *, cacheable: bool, ttl: str = "5m") -> dict[str, Any]:
    return {
        "target": target,
        "content": content,
        "cacheable": cacheable,
        "ttl": ttl,
        "content_hash": hashlib.sha256(content.encode()).hexdigest(),
    }


JUDGE_INSTRUCTIONS = (
    "You are an impartial examiner making comparative judgements of student essays. " * 8
)
ASSIGNMENT = "Assignment: write an argumentative essay on school uniforms. " * 10
RUBRIC = "Rubric: thesis, evidence, organisation, style, conventions, each scored 1-6. " * 10
RESPONSE_INSTRUCTIONS = "Respond with the winner, a justification and your confidence."


def cj_request(
    essay_a: str = "Uniforms reduce bullying, as three studies show.",
    essay_b: str = "Uniforms are bad because I do not like them.",
    *,
    provider: str = "openai",
    model: str = "gpt-5.1",
    callback_topic: str = "huleedu.llm_provider.comparison_result.v1",
) -> dict[str, Any]:
    """A request body as CJ Assessment's client builds it today: the whole prompt in
    `user_prompt` (essays embedded), the same prompt as `prompt_blocks` (the static ones
    cacheable, the essay pair not), overrides with None fields left out, its metadata and
    callback topic, and no `processing_mode`."""
    pair = f"**Essay A (ID: e-a1):**\n{essay_a}\n\n**Essay B (ID: e-b2):**\n{essay_b}"
    blocks = [
        _block("system", JUDGE_INSTRUCTIONS, cacheable=True, ttl="1h"),
        _block("user_content", ASSIGNMENT, cacheable=True, ttl="1h"),
        _block("user_content", RUBRIC, cacheable=True, ttl="1h"),
        _block("user_content", pair, cacheable=False),
        _block("user_content", RESPONSE_INSTRUCTIONS, cacheable=True),
    ]
    return {
        "user_prompt": "\n\n".join([ASSIGNMENT, RUBRIC, pair, RESPONSE_INSTRUCTIONS]),
        "prompt_blocks": blocks,
        "callback_topic": callback_topic,
        "llm_config_overrides": {"provider_override": provider, "model_override": model},
        "correlation_id": str(uuid.uuid4()),
        "metadata": {
            "essay_a_id": "e-a1",
            "essay_b_id": "e-b2",
            "bos_batch_id": "bos-17",
            "cj_batch_id": "cj-42",
            "cj_source": "cj_assessment",
            "cj_request_type": "comparison",
        },
    }
