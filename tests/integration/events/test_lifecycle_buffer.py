"""Observability events leave the request path: a request is answered while a send of its
events is blocked, and the events arrive once the publisher answers again."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from common_core.events import EventEnvelope
from tests.fakes import RecordingEventDeps, RecordingPublisher
from tests.integration.conftest import StartApp
from tests.support.processes import poll_until

pytestmark = pytest.mark.timeout(60)

HANG_GUARD = 20.0
"""Not a speed bound: only keeps a request that waits for the blocked send from hanging the
run (with the events inline, it would wait for ever)."""


@dataclass
class GatedPublisher(RecordingPublisher):
    """Every publish waits until `gate` opens, like a broker that does not answer."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    waiting: int = 0

    async def publish(self, topic: str, envelope: EventEnvelope[Any]) -> None:
        self.entered.set()
        self.waiting += 1
        try:
            await self.gate.wait()
        finally:
            self.waiting -= 1
        await super().publish(topic, envelope)


async def test_a_request_is_answered_while_its_events_wait_for_the_broker(
    start_app: StartApp,
) -> None:
    publisher = GatedPublisher()
    # Events go to Kafka (here the gated stand-in): the background drain runs.
    client = await start_app(RecordingEventDeps(publisher), kafka_enabled=True)
    body = {
        "user_prompt": "Which essay is better argued?",
        "essay_a": "A careful argument.",
        "essay_b": "A loud assertion.",
        "processing_mode": "immediate",
    }

    response = await asyncio.wait_for(
        client.post("/api/v1/comparison", json=body), timeout=HANG_GUARD
    )

    assert response.status_code == 200
    request_id = (await response.get_json())["request_id"]
    assert publisher.entered.is_set()  # the first event's send had started ...
    assert publisher.waiting >= 1  # ... and was still blocked when the answer came back
    assert publisher.events == []

    publisher.gate.set()  # the broker answers again

    def arrived() -> list[str] | None:
        types = [
            e.event_type
            for _, e in publisher.events
            if str(getattr(e.data, "request_id", "")) == request_id
        ]
        return types if len(types) >= 2 else None

    types = await poll_until(arrived, within=10, what="the request's lifecycle events")
    assert types == ["llm_provider.request_started.v1", "llm_provider.request_completed.v1"]
