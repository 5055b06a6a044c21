"""A request-path result whose outbox write fails is still delivered: the app keeps it in
process and the relay writes it to the outbox once the store answers again."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from dishka import Provider, Scope, provide

from services.llm_provider_service.errors import QueueUnavailableError
from services.llm_provider_service.models import Delivery
from services.llm_provider_service.outbox.memory import InMemoryResultOutbox
from services.llm_provider_service.protocols import ResultOutbox
from services.llm_provider_service.result_deliveries import result_event_id
from tests.fakes import RecordingEventDeps, RecordingPublisher
from tests.integration.conftest import StartApp
from tests.support.processes import poll_until

pytestmark = pytest.mark.timeout(60)

TOPIC = "huleedu.cj_assessment.results.v1"
BODY: dict[str, Any] = {
    "user_prompt": "Which essay is better argued?",
    "essay_a": "A careful argument.",
    "essay_b": "A loud assertion.",
    "processing_mode": "immediate",
    "callback_topic": TOPIC,
}


@dataclass
class FlakyOutbox:
    """The in-memory outbox, whose writes fail like an unreachable Redis while `down`."""

    inner: InMemoryResultOutbox = field(
        default_factory=lambda: InMemoryResultOutbox(retention_seconds=600)
    )
    down: bool = False
    refused: int = 0

    async def add(self, delivery: Delivery) -> bool:
        if self.down:
            self.refused += 1
            raise QueueUnavailableError("the result outbox is unreachable (test)")
        return await self.inner.add(delivery)

    def __getattr__(self, name: str) -> Any:  # claim, delivered, retry, ... as the inner one
        return getattr(self.inner, name)


class FlakyOutboxDeps(Provider):
    scope = Scope.APP

    def __init__(self, outbox: FlakyOutbox) -> None:
        super().__init__()
        self._outbox = outbox

    @provide
    def outbox(self) -> ResultOutbox:
        return self._outbox


async def test_a_result_the_outbox_could_not_take_is_delivered_once_it_is_back(
    start_app: StartApp,
) -> None:
    outbox = FlakyOutbox(down=True)
    publisher = RecordingPublisher()
    client = await start_app(
        FlakyOutboxDeps(outbox),
        RecordingEventDeps(publisher),
        outbox_poll_interval_seconds=0.05,
        outbox_retry_base_seconds=0.05,
        outbox_retry_max_seconds=0.1,
    )

    response = await client.post("/api/v1/comparison", json=BODY)
    assert response.status_code == 200  # the caller has its answer whatever the outbox does
    request_id = (await response.get_json())["request_id"]
    await poll_until(lambda: outbox.refused > 1, within=10, what="the relay retrying the write")
    assert publisher.of_type("comparison_result") == []

    outbox.down = False

    def published() -> list[Any] | None:
        events = publisher.of_type("comparison_result")
        return [e for e in events if str(e.data.request_id) == request_id] or None

    [event] = await poll_until(published, within=10, what="the result event published")
    assert publisher.topics().count(TOPIC) == 1
    assert str(event.event_id) == str(result_event_id(event.data.request_id))
