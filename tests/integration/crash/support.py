"""Reading and writing many queue records from a crash test, in bounded batches."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from uuid import UUID

from services.llm_provider_service.models import QueueRecord
from services.llm_provider_service.redis.queue import RedisRequestQueue
from tests.factories import make_job

BATCH = 40  # below the client's connection limit

QueueFactory = Callable[..., RedisRequestQueue]
"""The `make_queue` fixture: `make_queue(max_attempts=..., lease_seconds=...)`."""


async def enqueue_many(queue: RedisRequestQueue, count: int, *, priority: int = 5) -> list[UUID]:
    """Enqueue `count` fresh mock jobs; their queue ids in enqueue order."""
    ids: list[UUID] = []
    while len(ids) < count:
        batch = await asyncio.gather(
            *(
                queue.enqueue(make_job(), priority=priority, ttl_seconds=3600)
                for _ in range(min(BATCH, count - len(ids)))
            )
        )
        ids.extend(record.queue_id for record in batch)
    return ids


async def get_many(queue: RedisRequestQueue, ids: Sequence[UUID]) -> list[QueueRecord | None]:
    """The records of `ids`, in order (None where a record does not exist)."""
    records: list[QueueRecord | None] = []
    for start in range(0, len(ids), BATCH):
        records.extend(await asyncio.gather(*(queue.get(q) for q in ids[start : start + BATCH])))
    return records
