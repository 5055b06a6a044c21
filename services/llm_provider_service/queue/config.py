"""What every queue implementation shares: the order score, the announced form of a job,
and the refusals of a full queue. Its tuning is `settings.QueueSettings`."""

from __future__ import annotations

from common_core.pass_through import PassThrough
from services.llm_provider_service.errors import QueueFullError, QuotaExceededError
from services.llm_provider_service.models import ComparisonJob

# How long a caller refused for a full queue (or a full share of it) is told to wait.
QUEUE_FULL_RETRY_AFTER_SECONDS = 30.0


def order_score(enqueued_at_ms: int, priority: int, boost_ms: int) -> int:
    """A request's place in its provider's queue: the lowest score is claimed first.

    Priority is a time credit: each priority level counts as if the request had arrived
    `boost_ms` earlier. So requests of one priority go in arrival order, a higher priority
    goes first among requests that arrived close together, and a request of priority `p`
    waits at most `(q - p) * boost_ms` behind one of priority `q` that arrived after it.

    Retries and reclaimed leases keep the score computed at enqueue, so they keep their
    place. Scores are integers of epoch milliseconds, far below 2**53, so a Redis sorted-set
    score (a double) holds them exactly; ties must be broken by enqueue order.
    """
    return enqueued_at_ms - priority * boost_ms


# What an announced record's job says instead of the prompt it no longer keeps.
DROPPED_PROMPT = "(dropped once the result was announced)"


def announced_form(job: ComparisonJob) -> ComparisonJob:
    """The job as an ended record keeps it once its result event is in the outbox.

    Nothing reads the request's text after that (the status route needs the ids and the
    caller; the result event is already built), so the essays, the prompt, its blocks and the
    caller's pass-through fields (`PassThrough`: the result keeps its own copy) are dropped:
    they are most of a record's bytes. Still a valid `ComparisonJob`, so a replica of the
    previous version reads it as before.
    """
    passed = {
        name: field.get_default(call_default_factory=True)
        for name, field in PassThrough.model_fields.items()
    }
    request = job.request.model_copy(
        update={
            "user_prompt": DROPPED_PROMPT,
            "essay_a": None,
            "essay_b": None,
            "prompt_blocks": None,
            **passed,
        }
    )
    return job.model_copy(update={"request": request})


def queue_full(max_size: int) -> QueueFullError:
    """What every queue raises when it holds its maximum."""
    return QueueFullError(
        f"the request queue holds its maximum of {max_size} requests",
        details={"max_size": max_size},
        retry_after=QUEUE_FULL_RETRY_AFTER_SECONDS,
    )


def caller_queue_full(caller: str | None, limit: int | None) -> QuotaExceededError:
    """What every queue raises when a caller already has its `max_queued` requests."""
    return QuotaExceededError(
        f"caller {caller} already has {limit} requests waiting or running, its max_queued",
        details={"quota": "max_queued", "limit": limit, "caller": caller},
        retry_after=QUEUE_FULL_RETRY_AFTER_SECONDS,
    )
