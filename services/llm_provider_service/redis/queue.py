"""`RedisRequestQueue`: the durable outage queue, every state change one atomic Lua script."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, cast
from uuid import UUID

from common_core.api_models import ComparisonResult, ErrorInfo
from common_core.enums import LLMProviderType, QueueStatus
from services.llm_provider_service.errors import (
    ConflictError,
    NotFoundError,
    QueueMemoryFullError,
    QueueUnavailableError,
)
from services.llm_provider_service.models import (
    ComparisonJob,
    Lease,
    QueueRecord,
    QueueStats,
    ReapReport,
    StoreMemory,
)
from services.llm_provider_service.queue.config import (
    announced_form,
    caller_queue_full,
    queue_full,
)
from services.llm_provider_service.redis.client import (
    RedisClient,
    server_memory_info,
    server_time_ms,
)
from services.llm_provider_service.redis.errors import translated_redis_errors
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.queue_layout import (
    SCRIPTS,
    leading_args,
    record_from_hash,
    shared_keys,
    utc_from_ms,
)
from services.llm_provider_service.redis.scripts import Script, lua, register
from services.llm_provider_service.settings import QueueSettings

logger = logging.getLogger(__name__)

_STORE = "the request queue"


class RedisRequestQueue:
    """The `RequestQueue` contract on Redis; see documentation/queue.md for the design.

    `time_offset_ms` shifts Redis `TIME` for tests that must move time; it is always 0 in
    the service, where Redis `TIME` is the only clock. `batch_lane` makes it the batch
    lane's queue: PROCESSING requests may be cancelled and expire at their TTL (`BATCH_LANE`
    in `lua/queue/_lib.lua`).
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
        self._redis = redis
        self._lane_flag = "1" if batch_lane else "0"
        self._keys = keys
        self._config = config
        self._offset = time_offset_ms
        self._reap_limit = reap_limit
        self._shared = shared_keys(keys)
        self._scripts: dict[str, Script] = {
            name: register(redis, lua("queue/_lib", f"queue/{name}")) for name in SCRIPTS
        }

    async def _run(self, name: str, *args: Any, keys: tuple[str, ...] = ()) -> Any:
        """Run script `name` with the shared keys, then `keys` (the request's own)."""
        common = leading_args(self._keys, self._config, self._offset(), self._reap_limit)
        bounds = (self._config.result_max_bytes, self._config.result_max_count, self._lane_flag)
        async with translated_redis_errors(_STORE):
            return await self._scripts[name](
                keys=[*self._shared, *keys], args=[*common, *args, *bounds]
            )

    async def enqueue(
        self,
        job: ComparisonJob,
        *,
        priority: int,
        ttl_seconds: int,
        delay_seconds: float = 0.0,
        caller_limit: int | None = None,
        max_size: int | None = None,
    ) -> QueueRecord:
        """The port's `enqueue`; `max_size` (default `QUEUE_MAX_SIZE`) is the depth this call
        may fill the queue to, which `ShardedRequestQueue` lowers by what other shards hold.
        A refusal names `QUEUE_MAX_SIZE` either way."""
        outcome = await self._run(
            "enqueue",
            str(job.request_id),
            job.provider.value,
            priority,
            ttl_seconds * 1000,
            self._config.priority_boost_ms,
            self._config.max_size if max_size is None else max_size,
            self._config.max_attempts,
            job.model_dump_json(),
            str(job.correlation_id),
            round(delay_seconds * 1000),
            job.caller or "",
            caller_limit or 0,
            announced_form(job).model_dump_json(),
            keys=self._enqueue_keys(job),
        )
        if int(outcome[0]) == -1:
            raise queue_full(self._config.max_size)
        if int(outcome[0]) == -2:
            raise caller_queue_full(job.caller, caller_limit)
        flat = outcome[1]
        return record_from_hash(str(job.request_id), dict(zip(flat[::2], flat[1::2], strict=True)))

    def _enqueue_keys(self, job: ComparisonJob) -> tuple[str, ...]:
        record = self._keys.request(str(job.request_id))
        ready = self._keys.ready(job.provider)
        return (record, ready, self._keys.active(job.caller)) if job.caller else (record, ready)

    async def claim(self, provider: LLMProviderType, *, limit: int, owner: str) -> list[Lease]:
        # What the claim's own reap found is handed on in Redis, for the next `reap()` of
        # any replica to report.
        leases = await self._run(
            "claim", provider.value, limit, owner, self._lease_ms, keys=self._ready(provider)
        )
        return [
            Lease(
                queue_id=UUID(queue_id),
                token=int(token),
                owner=owner,
                attempt=int(attempts),
                job=ComparisonJob.model_validate_json(job),
                queued_at=utc_from_ms(queued_at),
                claimed_at=utc_from_ms(claimed_at),
                expires_at=utc_from_ms(expires_at),
            )
            for queue_id, token, attempts, job, queued_at, claimed_at, expires_at in leases
        ]

    def _request_key(self, queue_id: UUID) -> tuple[str]:
        return (self._keys.request(str(queue_id)),)

    def _ready(self, provider: LLMProviderType) -> tuple[str]:
        return (self._keys.ready(provider),)

    @property
    def _lease_ms(self) -> int:
        return round(self._config.lease_seconds * 1000)

    async def heartbeat(self, lease: Lease) -> bool:
        args = (str(lease.queue_id), str(lease.token), self._lease_ms)
        return int(await self._run("heartbeat", *args, keys=self._request_key(lease.queue_id))) == 1

    async def complete(self, lease: Lease, result: ComparisonResult) -> bool:
        args = (str(lease.queue_id), str(lease.token), result.model_dump_json())
        return int(await self._run("complete", *args, keys=self._request_key(lease.queue_id))) == 1

    async def fail(
        self, lease: Lease, error: ErrorInfo, *, retry_in: float | None
    ) -> QueueStatus | None:
        retry_ms = -1 if retry_in is None else max(0, round(retry_in * 1000))
        args = (str(lease.queue_id), str(lease.token), error.model_dump_json(), retry_ms)
        outcome = await self._run("fail", *args, keys=self._request_key(lease.queue_id))
        return QueueStatus(outcome) if outcome else None

    async def release(self, lease: Lease) -> bool:
        keys = self._request_key(lease.queue_id) + self._ready(lease.job.provider)
        return (
            int(await self._run("release", str(lease.queue_id), str(lease.token), keys=keys)) == 1
        )

    async def get(self, queue_id: UUID) -> QueueRecord | None:
        async with translated_redis_errors(_STORE):
            fields = await self._redis.hgetall(self._keys.request(str(queue_id)))
        return record_from_hash(str(queue_id), cast(dict[str, str], fields)) if fields else None

    async def position(self, queue_id: UUID) -> int | None:
        async with translated_redis_errors(_STORE):
            status, provider, score = cast(
                list[str | None],
                await self._redis.hmget(
                    self._keys.request(str(queue_id)), ["status", "provider", "score"]
                ),
            )
            if status != QueueStatus.QUEUED.value or provider is None or score is None:
                return None
            ready = self._keys.ready(LLMProviderType(provider))
            ahead = await self._redis.zcount(ready, "-inf", f"({score}")
        return int(ahead) + 1

    async def cancel(self, queue_id: UUID) -> QueueRecord:
        outcome = await self._run("cancel", str(queue_id), keys=self._request_key(queue_id))
        if outcome == "missing":
            raise NotFoundError(f"no queued request {queue_id}")
        if outcome != "ok":
            raise ConflictError(
                f"request {queue_id} is {outcome} and can no longer be cancelled",
                details={"queue_id": str(queue_id), "status": outcome},
            )
        record = await self.get(queue_id)
        assert record is not None  # just written; retention is hours
        return record

    async def take_unannounced(self, *, limit: int, hide_seconds: float) -> list[QueueRecord]:
        ids = await self._run("take_unannounced", limit, round(hide_seconds * 1000))
        return await self._records(ids)

    async def mark_announced(self, queue_id: UUID) -> None:
        await self._run("announced", str(queue_id), keys=self._request_key(queue_id))

    async def reap(self) -> ReapReport:
        """This reap's findings plus those that any replica's claims handed on in Redis
        (`reaped:*`): each finding is reported once, by the replica whose reap took it."""
        expired, failed, lease_expiries, promoted = await self._run("reap")
        return ReapReport(
            expired=tuple(await self._records(expired)),
            failed=tuple(await self._records(failed)),
            lease_expiries=int(lease_expiries),
            promoted=int(promoted),
        )

    async def _records(self, ids: list[str]) -> list[QueueRecord]:
        if not ids:
            return []
        async with translated_redis_errors(_STORE), self._redis.pipeline(transaction=False) as pipe:
            for queue_id in ids:
                pipe.hgetall(self._keys.request(queue_id))
            rows = await pipe.execute()
        return [record_from_hash(qid, row) for qid, row in zip(ids, rows, strict=True) if row]

    async def stats(self) -> QueueStats:
        keys = self._keys
        async with translated_redis_errors(_STORE):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(keys.depth)
                pipe.hgetall(keys.priorities)
                pipe.zcard(keys.leases)
                pipe.zrange(keys.enqueued, 0, 0, withscores=True)
                depth, priorities, processing, oldest = await pipe.execute()
            now_ms = await server_time_ms(self._redis, keys.enqueued) + self._offset()
        oldest_ms = int(oldest[0][1]) if oldest else None
        return QueueStats(
            depth={LLMProviderType(p): int(n) for p, n in depth.items() if int(n) > 0},
            depth_by_priority={int(p): int(n) for p, n in priorities.items() if int(n) > 0},
            processing=int(processing),
            oldest_queued_at=None if oldest_ms is None else utc_from_ms(oldest_ms),
            oldest_age_seconds=None if oldest_ms is None else max(0, now_ms - oldest_ms) / 1000,
        )

    async def memory(self) -> StoreMemory:
        """`INFO memory`, then one small write (`SET` with a 60 s expiry): an OOM refusal of
        it means Redis is at its maxmemory and refuses every request that would be kept."""
        async with translated_redis_errors(_STORE):
            info = await server_memory_info(self._redis, self._keys.memory_probe)
        refused = False
        try:
            async with translated_redis_errors(_STORE):
                await self._redis.set(self._keys.memory_probe, "1", px=60_000)
        except QueueMemoryFullError:
            refused = True
        return StoreMemory(
            used_bytes=int(info["used_memory"]),
            max_bytes=int(info.get("maxmemory", 0)),
            writes_refused=refused,
        )

    async def wait_for_work(self, max_wait: float) -> None:
        """BLPOP on the wake list; on a Redis failure, wait out `max_wait` instead of
        returning at once, so an idle worker never spins against a dead server."""
        try:
            async with translated_redis_errors(_STORE):
                await self._redis.blpop([self._keys.wake], timeout=max(max_wait, 0.01))
        except QueueUnavailableError:
            await asyncio.sleep(max_wait)
