"""Ports: the interfaces the orchestrator, worker and routes depend on.

Concrete adapters live in `providers/`, `queue/` and `events/`; only `di/` and `app.py`
import them. Import the ports from here (`from services.llm_provider_service.protocols import
RequestQueue`); each module of this package holds the ports of one floor: `provider.py` (the
LLM vendors), `queue.py` (the request queue), `delivery.py` (events and result deliveries),
`stores.py` (idempotency keys, position-bias counts, request-rate quotas), `batch.py`
(the vendors' Batch APIs and the batch lane's records). Every method's
docstring states its contract.
"""

from __future__ import annotations

from services.llm_provider_service.protocols.batch import BatchAPI, SpillStore
from services.llm_provider_service.protocols.delivery import EventPublisher, ResultOutbox
from services.llm_provider_service.protocols.provider import (
    FaultInjection,
    LLMProvider,
    ResponseCache,
)
from services.llm_provider_service.protocols.queue import DrainRate, RequestQueue
from services.llm_provider_service.protocols.stores import (
    IdempotencyStore,
    PositionBiasStore,
    RateLimiter,
)

__all__ = [
    "BatchAPI",
    "DrainRate",
    "EventPublisher",
    "FaultInjection",
    "IdempotencyStore",
    "LLMProvider",
    "PositionBiasStore",
    "RateLimiter",
    "RequestQueue",
    "ResponseCache",
    "ResultOutbox",
    "SpillStore",
]
