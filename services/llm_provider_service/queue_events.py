"""The observability events and transition metrics of queued requests that ended.

Only observability: the result event of every ended queued request is owed through the
queue's unannounced set, which the result relay drains (`relay.py`).
"""

from __future__ import annotations

import uuid

from common_core.api_models import ErrorInfo
from common_core.enums import LLMProviderType, QueueStatus
from common_core.events import LLMProviderEvent, QueueStatusChangedData, RequestExpiredData
from services.llm_provider_service.lifecycle_events import LifecycleEvents
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.models import Lease, QueueRecord, ReapReport


async def announce_status(
    events: LifecycleEvents, lease: Lease, status: QueueStatus, error: ErrorInfo | None
) -> None:
    """`queue_status_changed` for a request the worker itself completed or failed."""
    job = lease.job
    await _status_changed(
        events, job.correlation_id, lease.queue_id, job.provider, status, lease.attempt, error
    )


async def announce_reaped(
    report: ReapReport, events: LifecycleEvents, metrics: ServiceMetrics
) -> None:
    """What the reaper found: lease expiries counted; `request_expired` and
    `queue_status_changed` for each expired request, `queue_status_changed` for each failed
    one (attempts spent while its lease expired)."""
    if report.lease_expiries:
        metrics.queue_lease_expiries.inc(report.lease_expiries)
    for record in report.expired:
        metrics.record_transition(QueueStatus.EXPIRED)
        await events.emit(
            LLMProviderEvent.REQUEST_EXPIRED,
            record.correlation_id,
            RequestExpiredData(
                queue_id=record.queue_id,
                provider=record.provider,
                queued_at=record.queued_at,
                expires_at=record.expires_at,
                attempts=record.attempts,
            ),
        )
        await _ended_without_result(events, record)
    for record in report.failed:
        metrics.record_transition(QueueStatus.FAILED)
        await _ended_without_result(events, record)


async def _ended_without_result(events: LifecycleEvents, record: QueueRecord) -> None:
    error = record.error or ErrorInfo(code=record.status.value.upper(), message="")
    await _status_changed(
        events,
        record.correlation_id,
        record.queue_id,
        record.provider,
        record.status,
        record.attempts,
        error,
    )


async def _status_changed(
    events: LifecycleEvents,
    correlation_id: uuid.UUID,
    queue_id: uuid.UUID,
    provider: LLMProviderType,
    status: QueueStatus,
    attempts: int,
    error: ErrorInfo | None,
) -> None:
    await events.emit(
        LLMProviderEvent.QUEUE_STATUS_CHANGED,
        correlation_id,
        QueueStatusChangedData(
            queue_id=queue_id,
            provider=provider,
            status=status,
            attempts=attempts,
            error=error,
        ),
    )
