"""Hand-written fakes that satisfy the service's ports and record what happened."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dishka import Provider, Scope, provide

from common_core.api_models import DependencyHealth, LLMConfigOverrides, TokenUsage
from common_core.enums import EssayWinner, HealthStatus, LLMProviderType
from common_core.events import EventEnvelope
from services.llm_provider_service.models import ComparisonPrompt, Judgement
from services.llm_provider_service.protocols import EventPublisher


@dataclass
class ScriptedProvider:
    """An `LLMProvider` that answers from a script: each entry is a Judgement to return or an
    exception to raise; when the script runs out it answers Essay A. Records every call."""

    provider: LLMProviderType = LLMProviderType.MOCK
    default_model: str = "scripted-1"
    script: list[Judgement | Exception] = field(default_factory=list)
    calls: list[tuple[ComparisonPrompt, LLMConfigOverrides]] = field(default_factory=list)
    gate: asyncio.Event | None = None  # when set, each call waits for it

    async def compare(self, prompt: ComparisonPrompt, overrides: LLMConfigOverrides) -> Judgement:
        self.calls.append((prompt, overrides))
        if self.gate is not None:
            await self.gate.wait()
        step: Judgement | Exception = self.script.pop(0) if self.script else judgement()
        if isinstance(step, Exception):
            raise step
        return step


def judgement(winner: EssayWinner = EssayWinner.ESSAY_A, **overrides: Any) -> Judgement:
    fields: dict[str, Any] = {
        "winner": winner,
        "justification": f"{winner.value} is better argued.",
        "confidence": 4,
        "model": "scripted-1",
        "token_usage": TokenUsage(prompt_tokens=10, completion_tokens=5, total_tokens=15),
        "provider_request_id": "req-1",
    }
    fields.update(overrides)
    return Judgement(**fields)


@dataclass
class RecordingPublisher:
    """An `EventPublisher` that keeps every event; `fail_with` makes publishing raise."""

    events: list[tuple[str, EventEnvelope[Any]]] = field(default_factory=list)
    fail_with: Callable[[], Exception] | None = None

    async def publish(self, topic: str, envelope: EventEnvelope[Any]) -> None:
        if self.fail_with is not None:
            raise self.fail_with()
        self.events.append((topic, envelope))

    def of_type(self, event_type: str) -> list[EventEnvelope[Any]]:
        return [env for _, env in self.events if env.event_type == f"llm_provider.{event_type}.v1"]

    def topics(self) -> list[str]:
        return [topic for topic, _ in self.events]

    def health(self) -> DependencyHealth:
        if self.fail_with is not None:
            return DependencyHealth(status=HealthStatus.DEGRADED, detail="failing on purpose")
        return DependencyHealth(status=HealthStatus.HEALTHY)

    async def readiness(self) -> DependencyHealth:
        if self.fail_with is not None:
            return DependencyHealth(status=HealthStatus.UNHEALTHY, detail="failing on purpose")
        return DependencyHealth(status=HealthStatus.HEALTHY)


class RecordingEventDeps(Provider):
    """A container override that binds `publisher` as the app's `EventPublisher`."""

    scope = Scope.APP

    def __init__(self, publisher: RecordingPublisher) -> None:
        super().__init__()
        self._publisher = publisher

    @provide
    def event_publisher(self) -> EventPublisher:
        return self._publisher
