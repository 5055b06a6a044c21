"""`ShardedRequestQueue`: the request queue on a Redis Cluster, one `RedisRequestQueue` per
provider, each under a hash tag of its own (`RedisKeys.sharded`), so the queue spreads over
the cluster's masters instead of being one hot slot."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TypeVar
from uuid import UUID

from common_core.api_models import ComparisonResult, ErrorInfo
from common_core.enums import LLMProviderType, QueueStatus
from services.llm_provider_service.errors import (
    NotFoundError,
    QueueUnavailableError,
    QuotaExceededError,
)
from services.llm_provider_service.models import (
    ComparisonJob,
    Lease,
    QueueRecord,
    QueueStats,
    ReapReport,
    StoreMemory,
)
from services.llm_provider_service.queue.config import caller_queue_full
from services.llm_provider_service.redis.client import RedisClient
from services.llm_provider_service.redis.errors import translated_redis_errors
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.queue import RedisRequestQueue
from services.llm_provider_service.redis.queue_shards import STORE, QueueShards
from services.llm_provider_service.settings import QueueSettings

T = TypeVar("T")

# The global wake list keeps at most this many signals (as each shard's own `wake` does).
_WAKE_LENGTH = 64


class ShardedRequestQueue:
    """The `RequestQueue` contract on a Redis Cluster: the queue of provider `p` is a
    `RedisRequestQueue` under the tag `{prefix:p}`, so each provider's keys share one slot
    (every script stays atomic) and the providers' slots spread over the masters.

    A request lives in its provider's shard for its whole life; `claim` and a lease's calls
    go straight there. Calls that know only a queue id find its shard
    (`QueueShards.shard_of`). A shard whose master is down raises `QueueUnavailableError`
    for what is routed to it; the others keep working. Priority order holds within a
    provider, which is all a claim ever sees; fence tokens grow per shard.

    `QUEUE_MAX_SIZE` and a caller's `max_queued` stay global: the enqueue script sees only its
    own shard, so it is given the limit minus what the other shards held when read, just
    before. Two enqueues to different providers at the limit at the same moment may both
    pass, so the queue (or a caller) may overshoot its limit by the number of concurrent
    enqueues to other shards; never within one shard. A shard that cannot be read counts as
    what it last held (its depth) or as 0 (a caller's requests there), so during an outage
    the limits may be exceeded by what the unreachable master holds.

    Idle workers block on one wake list in a slot of its own (`{prefix:wake}:wake`), pushed
    after each enqueue and release, and after a reap that made work claimable; the shards'
    own `wake` lists are still pushed by their scripts and capped at 64 entries there
    (`make_ready` in `lua/queue/_lib.lua`). Work a claim's reap promotes wakes a worker at
    the next reap or within `poll_interval_seconds`, the worker's wait in any case.
    """

    def __init__(
        self,
        redis: RedisClient,
        keys: RedisKeys,
        config: QueueSettings,
        *,
        time_offset_ms: Callable[[], int] = lambda: 0,
        reap_limit: int = 500,
        batch_lane: bool = False,
    ) -> None:
        """`batch_lane`: every shard is a batch lane queue (`RedisRequestQueue`)."""
        self._redis = redis
        self._config = config
        self._shards = QueueShards(
            redis,
            keys,
            config,
            time_offset_ms=time_offset_ms,
            reap_limit=reap_limit,
            batch_lane=batch_lane,
        )
        self._wake = keys.sharded("wake").wake
        self._first_to_announce = 0

    async def enqueue(
        self,
        job: ComparisonJob,
        *,
        priority: int,
        ttl_seconds: int,
        delay_seconds: float = 0.0,
        caller_limit: int | None = None,
    ) -> QueueRecord:
        limited = job.caller if caller_limit else None
        depth, active = await self._shards.held_elsewhere(job.provider, limited)
        shard = self._shards[job.provider]
        caller_room = caller_limit
        if limited and caller_limit:
            caller_room = caller_limit - active
            if caller_room <= 0:
                # The script reads a limit of 0 as "none": refuse here, idempotently as the
                # script would (an existing record is returned as it is).
                existing = await shard.get(job.request_id)
                if existing is None:
                    raise caller_queue_full(job.caller, caller_limit)
                return existing
        try:
            record = await shard.enqueue(
                job,
                priority=priority,
                ttl_seconds=ttl_seconds,
                delay_seconds=delay_seconds,
                caller_limit=caller_room,
                max_size=self._config.max_size - depth,
            )
        except QuotaExceededError:
            raise caller_queue_full(job.caller, caller_limit) from None
        self._shards.remember(job.request_id, job.provider)
        await self._signal_work()
        return record

    async def claim(self, provider: LLMProviderType, *, limit: int, owner: str) -> list[Lease]:
        leases = await self._shards[provider].claim(provider, limit=limit, owner=owner)
        for lease in leases:
            self._shards.remember(lease.queue_id, provider)
        return leases

    async def heartbeat(self, lease: Lease) -> bool:
        return await self._shards[lease.job.provider].heartbeat(lease)

    async def complete(self, lease: Lease, result: ComparisonResult) -> bool:
        return await self._shards[lease.job.provider].complete(lease, result)

    async def fail(
        self, lease: Lease, error: ErrorInfo, *, retry_in: float | None
    ) -> QueueStatus | None:
        return await self._shards[lease.job.provider].fail(lease, error, retry_in=retry_in)

    async def release(self, lease: Lease) -> bool:
        released = await self._shards[lease.job.provider].release(lease)
        if released:
            await self._signal_work()
        return released

    async def get(self, queue_id: UUID) -> QueueRecord | None:
        shard = await self._shards.shard_of(queue_id)
        return None if shard is None else await shard.get(queue_id)

    async def position(self, queue_id: UUID) -> int | None:
        shard = await self._shards.shard_of(queue_id)
        return None if shard is None else await shard.position(queue_id)

    async def cancel(self, queue_id: UUID) -> QueueRecord:
        shard = await self._shards.shard_of(queue_id)
        if shard is None:
            raise NotFoundError(f"no queued request {queue_id}")
        return await shard.cancel(queue_id)

    async def mark_announced(self, queue_id: UUID) -> None:
        shard = await self._shards.shard_of(queue_id)
        if shard is not None:
            await shard.mark_announced(queue_id)

    async def reap(self) -> ReapReport:
        """Every reachable shard's reap, merged. A shard that cannot be reached is left for
        the next pass (and logged) rather than failing the others, whose findings a reap
        takes out of Redis; raises only when no shard could be reaped."""
        reports = (await self._on_every_shard(lambda shard: shard.reap())).values()
        report = ReapReport(
            expired=tuple(record for r in reports for record in r.expired),
            failed=tuple(record for r in reports for record in r.failed),
            lease_expiries=sum(r.lease_expiries for r in reports),
            promoted=sum(r.promoted for r in reports),
        )
        if report.promoted or report.lease_expiries:
            await self._signal_work()  # work a reap made claimable again
        return report

    async def _on_every_shard(
        self, call: Callable[[RedisRequestQueue], Awaitable[T]]
    ) -> dict[LLMProviderType, T]:
        """`call` on every shard at once: what each reachable shard answered. A shard that
        cannot be reached is left out (logged once per outage); raises when none answered."""
        outcomes = await asyncio.gather(
            *(call(shard) for _, shard in self._shards), return_exceptions=True
        )
        providers = [provider for provider, _ in self._shards]
        done = {
            p: outcome
            for p, outcome in zip(providers, outcomes, strict=True)
            if not isinstance(outcome, BaseException)
        }
        for provider, outcome in zip(providers, outcomes, strict=True):
            if isinstance(outcome, QueueUnavailableError) and done:
                self._shards.skips.failed(provider.value, "its work waits until it answers")
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                self._shards.skips.answered(provider.value)
        return done

    async def take_unannounced(self, *, limit: int, hide_seconds: float) -> list[QueueRecord]:
        """Up to `limit` in all, shard by shard, each asked for what the others left; each
        call starts one shard further, so that no shard's backlog starves another's. Oldest
        first within a shard, not across shards. An unreachable shard is skipped (its
        records wait for the next call); raises only when every shard failed."""
        order = [provider for provider, _ in self._shards]
        start = self._first_to_announce % len(order)
        self._first_to_announce += 1
        taken: list[QueueRecord] = []
        failure: QueueUnavailableError | None = None
        for provider in order[start:] + order[:start]:
            if len(taken) >= limit:
                break
            try:
                records = await self._shards[provider].take_unannounced(
                    limit=limit - len(taken), hide_seconds=hide_seconds
                )
            except QueueUnavailableError as exc:
                self._shards.skips.failed(provider.value, "its work waits until it answers")
                failure = exc
                continue
            self._shards.skips.answered(provider.value)
            taken.extend(records)
            for record in records:
                self._shards.remember(record.queue_id, record.provider)
        if failure is not None and not taken:
            raise failure
        return taken

    async def stats(self) -> QueueStats:
        """Every shard's stats, merged; raises when any shard cannot be read, since a depth
        without it would be wrong."""
        every = await asyncio.gather(*(shard.stats() for _, shard in self._shards))
        depth: Counter[LLMProviderType] = Counter()
        by_priority: Counter[int] = Counter()
        for stats in every:
            depth.update(stats.depth)
            by_priority.update(stats.depth_by_priority)
        waiting = [s for s in every if s.oldest_queued_at is not None]
        oldest = min(waiting, key=lambda s: s.oldest_queued_at or 0) if waiting else None
        return QueueStats(
            depth=dict(depth),
            depth_by_priority=dict(by_priority),
            processing=sum(stats.processing for stats in every),
            oldest_queued_at=None if oldest is None else oldest.oldest_queued_at,
            oldest_age_seconds=None if oldest is None else oldest.oldest_age_seconds,
        )

    async def memory(self) -> StoreMemory:
        """The fullest reachable master's memory (the highest used / max ratio, then the most
        bytes), each shard probing its own master; `writes_refused` if any master refuses.
        Shards whose master cannot be reached are named in `unreachable`: one master down is
        a partial outage (its providers' requests get 503), not a reason to take every
        replica out of rotation. Raises only when no shard can be reached."""
        by_shard = await self._on_every_shard(lambda shard: shard.memory())
        reached = list(by_shard.values())
        unreachable = [provider.value for provider, _ in self._shards if provider not in by_shard]
        fullest = max(reached, key=lambda m: (m.used_ratio or 0.0, m.used_bytes))
        return StoreMemory(
            used_bytes=fullest.used_bytes,
            max_bytes=fullest.max_bytes,
            writes_refused=any(memory.writes_refused for memory in reached),
            unreachable=tuple(unreachable),
        )

    async def wait_for_work(self, max_wait: float) -> None:
        """BLPOP on the global wake list (BLPOP cannot span the shards' slots); on a Redis
        failure, wait out `max_wait` instead, so an idle worker never spins."""
        try:
            async with translated_redis_errors(STORE):
                await self._redis.blpop([self._wake], timeout=max(max_wait, 0.01))
        except QueueUnavailableError:
            await asyncio.sleep(max_wait)

    async def _signal_work(self) -> None:
        """Push the global wake list, capped; never raises: the work is already stored, and
        idle workers find it within `poll_interval_seconds` without the signal."""
        if self._shards.skips.skipped("wake"):
            return
        try:
            async with (
                translated_redis_errors(STORE),
                self._redis.pipeline(transaction=False) as pipe,
            ):
                pipe.lpush(self._wake, "1")
                pipe.ltrim(self._wake, 0, _WAKE_LENGTH - 1)
                await pipe.execute()
        except QueueUnavailableError:
            self._shards.skips.failed("wake", "idle workers poll instead of waking at once")
            self._shards.skips.skip("wake")
            return
        self._shards.skips.answered("wake")
