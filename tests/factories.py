"""Builders of valid domain values for tests, and a clock that moves only when told."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from common_core.api_models import ComparisonRequest, ComparisonResult
from common_core.enums import EssayWinner, LLMProviderType
from services.llm_provider_service.models import ComparisonJob


def make_request(**overrides: Any) -> ComparisonRequest:
    """A valid `ComparisonRequest`; keyword arguments replace its fields."""
    fields: dict[str, Any] = {
        "user_prompt": "Which essay argues its thesis better?",
        "essay_a": "Essay A argues carefully, with evidence.",
        "essay_b": "Essay B asserts loudly, without evidence.",
    }
    fields.update(overrides)
    return ComparisonRequest(**fields)


def make_job(provider: LLMProviderType = LLMProviderType.MOCK, **overrides: Any) -> ComparisonJob:
    """A valid `ComparisonJob` for `provider` with fresh ids; keyword arguments replace its
    fields (`request=make_request(priority=9)` to change the request itself)."""
    fields: dict[str, Any] = {
        "request_id": uuid4(),
        "correlation_id": uuid4(),
        "provider": provider,
        "request": make_request(),
        "requested_at": datetime.now(UTC),
        "trace_id": "trace-test",
    }
    fields.update(overrides)
    return ComparisonJob(**fields)


def make_result(job: ComparisonJob, **overrides: Any) -> ComparisonResult:
    """A valid `ComparisonResult` answering `job`."""
    fields: dict[str, Any] = {
        "request_id": job.request_id,
        "correlation_id": job.correlation_id,
        "winner": EssayWinner.ESSAY_A,
        "justification": "Essay A supports its claims.",
        "confidence": 4,
        "provider": job.provider,
        "model": "mock-rater-1",
        "response_time_ms": 12,
        "token_usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        "trace_id": job.trace_id,
        "completed_at": datetime.now(UTC),
    }
    fields.update(overrides)
    return ComparisonResult(**fields)


class FakeClock:
    """Epoch seconds that change only through `advance`; pass it where a `time.time` goes."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self.now += seconds
