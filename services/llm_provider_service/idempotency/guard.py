"""`IdempotencyGuard`: a retried POST with the same Idempotency-Key gets the same request.

This is exactly-once delivery, not caching: only a retry that carries the same key (and the
same body) sees the first request's queue_id or result. Two requests without a shared key
are always two fresh judgements, however identical their content.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from common_core.api_models import ComparisonRequest
from common_core.enums import ErrorCode
from services.llm_provider_service.callers import Caller
from services.llm_provider_service.errors import ConflictError, QueueUnavailableError
from services.llm_provider_service.idempotency.entries import finished, outcome_of, queued_outcome
from services.llm_provider_service.idempotency.fingerprint import fingerprint
from services.llm_provider_service.idempotency.settling import Pending, retry_settling
from services.llm_provider_service.models import IdempotencyEntry
from services.llm_provider_service.orchestrator import (
    ComparisonOrchestrator,
    Completed,
    Queued,
)
from services.llm_provider_service.protocols import IdempotencyStore, RequestQueue
from services.llm_provider_service.settings import Settings

_POLL_SECONDS = 0.05

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Replayed:
    """The answer a previous request with the same key got (a 200 or a 202)."""

    outcome: Completed | Queued


class IdempotencyGuard:
    """Runs a submission at most once per key; concurrent retries wait for the first."""

    def __init__(
        self,
        orchestrator: ComparisonOrchestrator,
        store: IdempotencyStore,
        queue: RequestQueue,
        settings: Settings,
    ) -> None:
        self._orchestrator = orchestrator
        self._store = store
        self._queue = queue
        self._settings = settings
        self._detached: set[asyncio.Future[Completed | Queued]] = set()
        self._pending: dict[str, Pending] = {}  # the newest settling of each key
        self._settling: set[asyncio.Future[None]] = set()  # every settling still running

    async def submit(
        self,
        request: ComparisonRequest,
        *,
        key: str | None,
        trace_id: str | None = None,
        correlation_id: uuid.UUID | None = None,
        caller: Caller | None = None,
    ) -> Completed | Queued | Replayed:
        """Like `ComparisonOrchestrator.submit`; with a key, a repeat returns `Replayed`.

        Keys are the caller's own: the same key from two callers names two requests, so no
        caller can claim, replay or learn of another's. Raises `ConflictError`
        (IDEMPOTENCY_KEY_REUSED) for the same key with another body, and (CONFLICT, with
        Retry-After) when the first request is still being served after
        IDEMPOTENCY_WAIT_SECONDS.
        """
        if key is None:
            return await self._orchestrator.submit(
                request, trace_id=trace_id, correlation_id=correlation_id, caller=caller
            )
        # Caller names cannot hold "/"; anonymous keys (an open service) are stored as sent.
        key = key if caller is None else f"{caller.name}/{key}"
        mine = IdempotencyEntry(fingerprint=fingerprint(request), request_id=uuid.uuid4())
        # Held only for as long as one submission can take; a crashed holder frees the key.
        hold = self._settings.idempotency.wait_seconds + 60.0
        await self._settled(key)
        for last_try in (False, True):
            try:
                existing = await self._store.reserve(key, mine, hold_seconds=hold)
            except BaseException:
                # The reservation may still land (a stalled Redis runs the command after the
                # caller's 503): withdraw it, so the retry is not kept waiting for a request
                # that was never made.
                self._release_later(key, mine, hold)
                raise
            if existing is None:
                break
            replayed = await self._replay(key, existing, mine.fingerprint, last_try=last_try)
            if replayed is not None:
                return replayed
            # The request it waited for failed and freed the key: this one goes ahead.
        # With a key the submission runs to its end even when the caller hangs up (a client
        # timeout): the retry with the key then gets this very judgement, where cancelling
        # would have paid for a call half made and then for a second one.
        work = asyncio.ensure_future(
            self._first_submission(key, mine, request, trace_id, correlation_id, caller, hold)
        )
        self._detached.add(work)
        work.add_done_callback(_forget_detached(self._detached))
        return await asyncio.shield(work)

    async def close(self) -> None:
        """At shutdown: stop settling keys in the background (one WARNING with how many were
        left; each lapses by itself within IDEMPOTENCY_WAIT_SECONDS + 60 s)."""
        tasks = list(self._settling)
        if not tasks:
            return
        logger.warning(
            "%d idempotency keys left unsettled at shutdown; they lapse by themselves", len(tasks)
        )
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _release_later(self, key: str, mine: IdempotencyEntry, hold: float) -> None:
        """Withdraw the reservation of `mine` in the background (see `_later`)."""

        async def release() -> None:
            await self._store.release(key, mine, fence_seconds=hold)

        self._later(key, mine, hold, release)

    def _later(
        self,
        key: str,
        mine: IdempotencyEntry,
        hold: float,
        step: Callable[[], Awaitable[None]],
    ) -> None:
        """Run `step` (settling the key of `mine`) in the background, retrying while the store
        cannot be reached, until it succeeds or the reservation would have lapsed anyway. A
        retry with the same key in this process waits for it (`_settled`)."""
        pending = Pending(asyncio.Event())
        pending.task = asyncio.ensure_future(retry_settling(mine, hold, step, pending.wake))
        self._pending[key] = pending
        self._settling.add(pending.task)

        def done(task: asyncio.Future[None]) -> None:
            self._settling.discard(task)
            if self._pending.get(key) is pending:
                del self._pending[key]
            if not task.cancelled():
                task.exception()

        pending.task.add_done_callback(done)

    async def _settled(self, key: str) -> None:
        """A retry first lets this process's settling of an earlier request with the same key
        finish (tried at once, not at its next backoff), for up to IDEMPOTENCY_WAIT_SECONDS."""
        pending = self._pending.get(key)
        if pending is None or pending.task is None:
            return
        pending.wake.set()
        await asyncio.wait({pending.task}, timeout=self._settings.idempotency.wait_seconds)

    async def _first_submission(
        self,
        key: str,
        mine: IdempotencyEntry,
        request: ComparisonRequest,
        trace_id: str | None,
        correlation_id: uuid.UUID | None,
        caller: Caller | None,
        hold: float,
    ) -> Completed | Queued:
        try:
            outcome = await self._orchestrator.submit(
                request,
                trace_id=trace_id,
                correlation_id=correlation_id,
                request_id=mine.request_id,
                caller=caller,
            )
        except BaseException:
            await asyncio.shield(self._settle_failure(key, mine, hold))
            raise
        entry = finished(mine, outcome)
        keep = self._settings.idempotency.retention_seconds

        async def save() -> None:
            await self._store.save(key, entry, keep_seconds=keep)

        try:
            await save()
        except QueueUnavailableError:
            # The request was served (or queued and read back): answer it, and record the key
            # once Redis answers, so a retry replays it instead of waiting for a lapse.
            self._later(key, mine, hold, save)
        return outcome

    async def _settle_failure(self, key: str, mine: IdempotencyEntry, hold: float) -> None:
        """After a failed or cancelled submission: if it got as far as the queue, the key
        now names that queued request; otherwise nothing was created and a retry may go.
        While Redis cannot be reached this is retried in the background, so the key is not
        held for a request that does not exist until its reservation lapses."""

        async def settle() -> None:
            record = await self._queue.get(mine.request_id)
            if record is None:
                await self._store.release(key, mine, fence_seconds=hold)
                return
            queued = queued_outcome(record)
            keep = self._settings.idempotency.retention_seconds
            await self._store.save(key, finished(mine, queued), keep_seconds=keep)

        try:
            await settle()
        except QueueUnavailableError:
            self._later(key, mine, hold, settle)

    async def _replay(
        self, key: str, entry: IdempotencyEntry, expected: str, *, last_try: bool
    ) -> Replayed | None:
        """The answer of the request that holds the key, waiting while it is being served;
        None when it failed and freed the key meanwhile (unless `last_try`: then 409)."""
        if entry.fingerprint != expected:
            raise ConflictError(
                "this Idempotency-Key was used with a different request body",
                details={"request_id": str(entry.request_id)},
            ).with_code(ErrorCode.IDEMPOTENCY_KEY_REUSED)
        deadline = time.monotonic() + self._settings.idempotency.wait_seconds
        current: IdempotencyEntry | None = entry
        while current is not None and current.outcome == "pending":
            record = await self._queue.get(current.request_id)
            if record is not None:  # queued, but its holder died before saving the key
                return Replayed(queued_outcome(record))
            if time.monotonic() >= deadline:
                raise ConflictError(
                    "a request with this Idempotency-Key is still being served; retry shortly",
                    details={"request_id": str(current.request_id)},
                    retry_after=1.0,
                )
            await asyncio.sleep(_POLL_SECONDS)
            current = await self._store.get(key)
        if current is None:  # the holder failed and freed the key: this retry may go ahead
            if not last_try:
                return None
            raise ConflictError(
                "the first request with this Idempotency-Key failed; retry it",
                retry_after=1.0,
            )
        return Replayed(outcome_of(current))


def _forget_detached(
    detached: set[asyncio.Future[Completed | Queued]],
) -> Callable[[asyncio.Future[Completed | Queued]], None]:
    """Drop a finished submission, marking its error retrieved: a caller that hung up is not
    there to read it, and its key has already been settled."""

    def done(work: asyncio.Future[Completed | Queued]) -> None:
        detached.discard(work)
        if not work.cancelled():
            work.exception()

    return done
