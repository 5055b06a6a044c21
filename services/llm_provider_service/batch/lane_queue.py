"""`BatchQueue`: the batch lane of the request queue, as the batch engine receives it."""

from __future__ import annotations

from dataclasses import dataclass

from services.llm_provider_service.protocols import RequestQueue
from services.llm_provider_service.settings import QueueSettings, Settings


@dataclass(frozen=True, slots=True)
class BatchQueue:
    """The raw batch lane (documentation/queue.md, "Batch lane"): only `processing_mode:
    "batch"` requests, claimed by the batch engine with leases of `BATCH_LEASE_SECONDS`. A
    PROCESSING request in it may be cancelled, and expires at its TTL, so the engine must
    treat a False from `complete` or `heartbeat` as "this item is dead". The rest of the
    service reaches the lane through `LanedRequestQueue`, bound as the `RequestQueue`."""

    queue: RequestQueue


def batch_lane_config(settings: Settings) -> QueueSettings:
    """The batch lane's queue settings: the queue's, with the lane's own bound
    (`BATCH_QUEUE_MAX_SIZE`) and lease period (`BATCH_LEASE_SECONDS`)."""
    return settings.queue.model_copy(
        update={
            "max_size": settings.batch.queue_max_size,
            "lease_seconds": settings.batch.lease_seconds,
        }
    )
