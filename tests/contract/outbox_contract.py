"""The `ResultOutbox` contract: one behaviour suite every outbox implementation must pass.

A harness module star-imports this and defines `outbox` (a fresh, empty outbox whose
retention is `RETENTION` seconds) and `advance(seconds)` (moves the outbox's time forward).
Tests leave at least half a second of margin around every deadline.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from common_core.enums import DeliveryChannel, DeliveryState
from services.llm_provider_service.models import Delivery
from services.llm_provider_service.protocols import ResultOutbox

RETENTION = 600.0
LEASE = 30.0


def make_delivery(
    request_id: UUID | None = None, channel: DeliveryChannel = DeliveryChannel.KAFKA
) -> Delivery:
    request_id = request_id or uuid4()
    event_id = uuid4()
    return Delivery(
        delivery_id=f"{event_id}:{channel.value}",
        request_id=request_id,
        channel=channel,
        destination="huleedu.test.results.v1"
        if channel is DeliveryChannel.KAFKA
        else "https://hooks.example.org/results",
        event_id=event_id,
        event_type="llm_provider.comparison_result.v1",
        key=str(uuid4()),
        payload=f'{{"event_id": "{event_id}", "data": {{"winner": "Essay A"}}}}',
        created_at=datetime.now(UTC),
        deadline=datetime.now(UTC) + timedelta(hours=1)
        if channel is DeliveryChannel.WEBHOOK
        else None,
    )


async def test_an_added_delivery_is_claimed_once_with_its_payload(outbox: ResultOutbox) -> None:
    delivery = make_delivery()
    assert await outbox.add(delivery)
    claimed = await outbox.claim(limit=10, lease_seconds=LEASE)
    assert [c.delivery_id for c in claimed] == [delivery.delivery_id]
    assert claimed[0].payload == delivery.payload
    assert claimed[0].attempts == 1
    assert claimed[0].destination == delivery.destination
    assert claimed[0].event_id == delivery.event_id
    assert await outbox.claim(limit=10, lease_seconds=LEASE) == []  # hidden by its lease


async def test_adding_the_same_delivery_twice_keeps_one(outbox: ResultOutbox) -> None:
    delivery = make_delivery()
    assert await outbox.add(delivery)
    assert not await outbox.add(delivery.model_copy(update={"payload": "{}"}))
    claimed = await outbox.claim(limit=10, lease_seconds=LEASE)
    assert [c.payload for c in claimed] == [delivery.payload]


async def test_a_repeat_after_delivery_is_still_ignored(outbox: ResultOutbox) -> None:
    delivery = make_delivery()
    await outbox.add(delivery)
    await outbox.claim(limit=1, lease_seconds=LEASE)
    await outbox.delivered(delivery.delivery_id)
    assert not await outbox.add(delivery)
    assert await outbox.claim(limit=10, lease_seconds=LEASE) == []


async def test_an_unacknowledged_claim_comes_back_after_its_lease(
    outbox: ResultOutbox, advance
) -> None:
    delivery = make_delivery()
    await outbox.add(delivery)
    await outbox.claim(limit=1, lease_seconds=5)
    await advance(4)
    assert await outbox.claim(limit=1, lease_seconds=5) == []
    await advance(1.6)
    again = await outbox.claim(limit=1, lease_seconds=5)
    assert [d.delivery_id for d in again] == [delivery.delivery_id]
    assert again[0].attempts == 2


async def test_retry_makes_it_due_after_the_delay_with_the_error(
    outbox: ResultOutbox, advance
) -> None:
    delivery = make_delivery()
    await outbox.add(delivery)
    await outbox.claim(limit=1, lease_seconds=LEASE)
    await outbox.retry(delivery.delivery_id, delay_seconds=3, error="broker unreachable")
    assert await outbox.claim(limit=1, lease_seconds=LEASE) == []
    await advance(3.6)
    again = await outbox.claim(limit=1, lease_seconds=LEASE)
    assert again[0].last_error == "broker unreachable"
    assert again[0].attempts == 2


async def test_delivered_leaves_the_outbox_and_stays_readable(outbox: ResultOutbox) -> None:
    delivery = make_delivery()
    await outbox.add(delivery)
    await outbox.claim(limit=1, lease_seconds=LEASE)
    await outbox.delivered(delivery.delivery_id)
    assert (await outbox.stats()).pending == {}
    [seen] = await outbox.for_request(delivery.request_id)
    assert seen.state is DeliveryState.DELIVERED
    assert seen.delivered_at is not None
    assert seen.attempts == 1


async def test_given_up_is_never_claimed_and_says_why(outbox: ResultOutbox, advance) -> None:
    delivery = make_delivery(channel=DeliveryChannel.WEBHOOK)
    await outbox.add(delivery)
    await outbox.claim(limit=1, lease_seconds=1)
    await outbox.give_up(delivery.delivery_id, error="HTTP 410")
    await advance(2)
    assert await outbox.claim(limit=10, lease_seconds=LEASE) == []
    [seen] = await outbox.for_request(delivery.request_id)
    assert (seen.state, seen.last_error) == (DeliveryState.FAILED, "HTTP 410")


async def test_a_late_retry_does_not_revive_a_delivered_one(outbox: ResultOutbox, advance) -> None:
    delivery = make_delivery()
    await outbox.add(delivery)
    await outbox.claim(limit=1, lease_seconds=LEASE)
    await outbox.delivered(delivery.delivery_id)
    await outbox.retry(delivery.delivery_id, delay_seconds=0, error="late")
    await advance(1)
    assert await outbox.claim(limit=10, lease_seconds=LEASE) == []
    [seen] = await outbox.for_request(delivery.request_id)
    assert seen.state is DeliveryState.DELIVERED


async def test_for_request_lists_every_channel_of_that_request_only(
    outbox: ResultOutbox,
) -> None:
    request_id = uuid4()
    kafka = make_delivery(request_id, DeliveryChannel.KAFKA)
    hook = make_delivery(request_id, DeliveryChannel.WEBHOOK)
    await outbox.add(kafka)
    await outbox.add(hook)
    await outbox.add(make_delivery())
    seen = await outbox.for_request(request_id)
    assert [d.channel for d in seen] == [DeliveryChannel.KAFKA, DeliveryChannel.WEBHOOK]
    assert all(d.state is DeliveryState.PENDING for d in seen)
    assert await outbox.for_request(uuid4()) == []


async def test_stats_count_pending_per_channel_and_the_oldest_age(
    outbox: ResultOutbox, advance
) -> None:
    assert (await outbox.stats()).oldest_age_seconds is None
    first = make_delivery()
    await outbox.add(first)
    await advance(10)
    await outbox.add(make_delivery())
    await outbox.add(make_delivery(channel=DeliveryChannel.WEBHOOK))
    stats = await outbox.stats()
    assert stats.pending == {DeliveryChannel.KAFKA: 2, DeliveryChannel.WEBHOOK: 1}
    assert 9.5 <= (stats.oldest_age_seconds or 0) <= 12
    await outbox.claim(limit=10, lease_seconds=LEASE)  # claimed is still pending
    assert sum((await outbox.stats()).pending.values()) == 3
    await outbox.delivered(first.delivery_id)
    stats = await outbox.stats()
    assert stats.pending == {DeliveryChannel.KAFKA: 1, DeliveryChannel.WEBHOOK: 1}
    assert stats.oldest_age_seconds is not None
    assert stats.oldest_age_seconds < 2


async def test_claims_come_oldest_first_and_respect_the_limit(
    outbox: ResultOutbox, advance
) -> None:
    deliveries = [make_delivery() for _ in range(5)]
    for delivery in deliveries:
        await outbox.add(delivery)
        await advance(1)
    first = await outbox.claim(limit=2, lease_seconds=LEASE)
    rest = await outbox.claim(limit=10, lease_seconds=LEASE)
    assert [d.delivery_id for d in first + rest] == [d.delivery_id for d in deliveries]


async def test_concurrent_claims_never_share_a_delivery(outbox: ResultOutbox) -> None:
    for _ in range(20):
        await outbox.add(make_delivery())
    batches = await asyncio.gather(*(outbox.claim(limit=3, lease_seconds=LEASE) for _ in range(10)))
    ids = [d.delivery_id for batch in batches for d in batch]
    assert sorted(ids) == sorted(set(ids))
    assert len(ids) == 20


async def test_ended_deliveries_are_forgotten_after_the_retention(
    outbox: ResultOutbox, advance
) -> None:
    delivery = make_delivery()
    await outbox.add(delivery)
    await outbox.claim(limit=1, lease_seconds=LEASE)
    await outbox.delivered(delivery.delivery_id)
    await advance(RETENTION + 5)
    assert await outbox.for_request(delivery.request_id) == []
