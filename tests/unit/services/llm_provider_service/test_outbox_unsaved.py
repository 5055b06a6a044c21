"""Deliveries held for an outbox that could not be written: bounded, in order, never dropped
by a failed flush."""

from __future__ import annotations

from typing import Any

import pytest

from common_core.enums import DeliveryChannel
from services.llm_provider_service.errors import QueueUnavailableError
from services.llm_provider_service.models import Delivery
from services.llm_provider_service.outbox.memory import InMemoryResultOutbox
from services.llm_provider_service.outbox.unsaved import UnsavedDeliveries
from tests.contract.outbox_contract import make_delivery


class FailingAfter:
    """An outbox whose writes succeed `ok` times, then fail as an unreachable Redis."""

    def __init__(self, ok: int) -> None:
        self.ok = ok
        self.inner = InMemoryResultOutbox(retention_seconds=600)

    async def add(self, delivery: Delivery) -> bool:
        if self.ok <= 0:
            raise QueueUnavailableError("unreachable (test)")
        self.ok -= 1
        return await self.inner.add(delivery)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_batch_is_kept_whole_or_not_at_all() -> None:
    unsaved = UnsavedDeliveries(max_deliveries=3)
    assert unsaved.keep([make_delivery(), make_delivery()])
    assert not unsaved.keep([make_delivery(), make_delivery(channel=DeliveryChannel.WEBHOOK)])
    assert len(unsaved) == 2
    assert unsaved.keep([make_delivery()])
    assert len(unsaved) == 3


async def test_a_failed_flush_keeps_the_rest_in_order_and_a_later_one_writes_them() -> None:
    held = [make_delivery() for _ in range(3)]
    unsaved = UnsavedDeliveries(max_deliveries=10)
    unsaved.keep(held)
    outbox = FailingAfter(ok=1)

    with pytest.raises(QueueUnavailableError):
        await unsaved.flush(outbox)
    assert len(unsaved) == 2

    outbox.ok = 10
    assert await unsaved.flush(outbox) == 2
    assert len(unsaved) == 0
    claimed = await outbox.inner.claim(limit=10, lease_seconds=30)
    assert sorted(d.delivery_id for d in claimed) == sorted(d.delivery_id for d in held)
