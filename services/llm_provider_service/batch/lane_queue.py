"""`BatchQueue`: the batch lane of the request queue, as the batch engine is given it."""

from __future__ import annotations

from dataclasses import dataclass

from services.llm_provider_service.protocols import RequestQueue


@dataclass(frozen=True, slots=True)
class BatchQueue:
    """The raw queue of `processing_mode: "batch"` requests: the engine claims, heartbeats,
    completes, fails and releases them there, with the same fenced leases as a worker."""

    queue: RequestQueue
