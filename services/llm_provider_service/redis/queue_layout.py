"""The request queue's layout in Redis: the keys every queue script receives, and a
record read back from its hash."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from common_core.api_models import ComparisonResult, ErrorInfo
from common_core.enums import ErrorCode, LLMProviderType, QueueStatus
from services.llm_provider_service.models import ComparisonJob, QueueRecord
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.settings import QueueSettings

# The queue's scripts, `lua/queue/<name>.lua`, each run after the prelude `lua/queue/_lib.lua`.
SCRIPTS = (
    "enqueue",
    "claim",
    "heartbeat",
    "complete",
    "fail",
    "release",
    "cancel",
    "reap",
    "take_unannounced",
    "announced",
)
_EXPIRED = ErrorInfo(
    code=ErrorCode.REQUEST_EXPIRED.value,
    message="the request reached its expires_at before a provider answered it",
)


def shared_keys(keys: RedisKeys) -> tuple[str, ...]:
    """KEYS[1] to KEYS[18] of every queue script, in the order `lua/queue/_lib.lua` reads
    them; a script about one request gets that request's keys after these."""
    return (
        keys.fence,
        keys.delayed,
        keys.leases,
        keys.expiry,
        keys.enqueued,
        keys.retention,
        keys.unannounced,
        keys.depth,
        keys.priorities,
        keys.sequence,
        keys.wake,
        keys.ended,
        keys.ended_size,
        keys.ended_bytes,
        keys.ended_sequence,
        keys.reaped_expired,
        keys.reaped_failed,
        keys.reaped_counts,
    )


def leading_args(
    keys: RedisKeys, config: QueueSettings, offset_ms: int, reap_limit: int
) -> tuple[str | int, ...]:
    """ARGV[1] to ARGV[6] of every queue script, as `lua/queue/_lib.lua` reads them."""
    lease_expired = ErrorInfo(
        code=ErrorCode.LEASE_EXPIRED.value,
        message=f"the worker holding it stopped heart-beating, with all "
        f"{config.max_attempts} attempts spent; it is not retried again",
    )
    return (
        keys.tag,
        offset_ms,
        round(config.result_retention_seconds * 1000),
        _EXPIRED.model_dump_json(),
        lease_expired.model_dump_json(),
        reap_limit,
    )


def utc_from_ms(ms: str | int) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


def record_from_hash(queue_id: str, h: dict[str, str]) -> QueueRecord:
    """The record as the scripts store it in its hash (`RedisKeys.request`)."""
    status = QueueStatus(h["status"])
    return QueueRecord(
        queue_id=UUID(queue_id),
        correlation_id=UUID(h["correlation_id"]),
        provider=LLMProviderType(h["provider"]),
        status=status,
        priority=int(h["priority"]),
        queued_at=utc_from_ms(h["queued_at"]),
        updated_at=utc_from_ms(h["updated_at"]),
        expires_at=utc_from_ms(h["expires_at"]),
        attempts=int(h["attempts"]),
        max_attempts=int(h["max_attempts"]),
        job=ComparisonJob.model_validate_json(h["job"]),
        result=ComparisonResult.model_validate_json(h["result"]) if "result" in h else None,
        error=ErrorInfo.model_validate_json(h["error"]) if "error" in h else None,
    )
