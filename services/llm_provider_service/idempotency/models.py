"""What an idempotency key remembers: the body it came with and what the request became."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel

from common_core.api_models import ComparisonResult, QueuedResponse


class IdempotencyEntry(BaseModel):
    """`outcome` is `pending` while the first request with the key is being served."""

    fingerprint: str
    request_id: UUID
    outcome: Literal["pending", "completed", "queued"] = "pending"
    result: ComparisonResult | None = None
    queued: QueuedResponse | None = None
    retry_after: int = 1
