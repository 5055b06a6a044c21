"""The stored form of a spill record and its vendor batch: JSON that a later version can read
(unknown keys are ignored, new ones get defaults)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

from common_core.enums import LLMProviderType
from services.llm_provider_service.batch.models import ProviderBatch
from services.llm_provider_service.protocols.batch import SpillEntry, SpillRecord, SpillState


def batch_json(batch: ProviderBatch) -> str:
    return json.dumps(
        {
            "provider": batch.provider.value,
            "batch_id": batch.batch_id,
            "model": batch.model,
            "created_at": batch.created_at.isoformat(),
            "item_count": batch.item_count,
            "files": list(batch.files),
        }
    )


def batch_of(text: str) -> ProviderBatch:
    raw = json.loads(text)
    return ProviderBatch(
        provider=LLMProviderType(raw["provider"]),
        batch_id=raw["batch_id"],
        model=raw["model"],
        created_at=datetime.fromisoformat(raw["created_at"]),
        item_count=int(raw["item_count"]),
        files=tuple(raw.get("files", ())),
    )


def record_json(record: SpillRecord) -> str:
    """The parts of `record` that never change after `begin` (state, batch and settled ids
    are kept beside it)."""
    return json.dumps(
        {
            "spill_id": record.spill_id,
            "provider": record.provider.value,
            "model": record.model,
            "started_at": record.started_at.isoformat(),
            "entries": [[e.queue_id.hex, e.token, e.attempt] for e in record.entries],
        }
    )


def record_of(text: str, state: str, batch: str | None, settled: frozenset[str]) -> SpillRecord:
    raw: dict[str, Any] = json.loads(text)
    return SpillRecord(
        spill_id=raw["spill_id"],
        provider=LLMProviderType(raw["provider"]),
        model=raw["model"],
        state=SpillState(state),
        started_at=datetime.fromisoformat(raw["started_at"]),
        entries=tuple(
            SpillEntry(UUID(hex=queue_id), int(token), int(attempt))
            for queue_id, token, attempt in raw["entries"]
        ),
        batch=batch_of(batch) if batch else None,
        settled=settled,
    )
