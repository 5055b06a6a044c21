"""`RedisKeys`: every Redis key name of the service, in one place, each with why it exists.

On a single Redis every key shares one hash tag (`{prefix}`). On a Redis Cluster
(`REDIS_CLUSTER=true`) each store, and the queue of each provider, gets keys of its own shard
(`{prefix:shard}`, see `sharded`): each shard's keys share one slot, so a Lua script may touch
any of them atomically, and the shards spread over the cluster's masters. The names are stored
state: a rolling deploy shares one Redis, so they never change (`test_keys.py` in the tests
of this package pins them). Python is the one place that names a key: the scripts receive
each key they touch as KEYS, apart from the exceptions `documentation/queue.md` lists
("Redis Cluster"): keys a script learns only inside itself (the record of an id it reads
from a sorted set, say), which carry the same hash tag.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from common_core.enums import DeliveryChannel, LLMProviderType


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """The key names under one prefix (`QUEUE_KEY_PREFIX`), grouped by the store that
    writes them: the request queue, the result outbox, idempotency keys, the position-bias
    report, the quotas, the drain rate and the development cache."""

    prefix: str = "llmq"
    # None on a single Redis; on a cluster, the shard these keys belong to (a provider for
    # the queue, the store's name for the others), which becomes part of the hash tag.
    shard: str | None = None

    @property
    def tag(self) -> str:
        """`{prefix}` (or `{prefix:shard}`): the hash tag every key starts with; passed to
        the queue and outbox scripts to name the keys they learn inside themselves."""
        return "{" + (self.prefix if self.shard is None else f"{self.prefix}:{self.shard}") + "}"

    def sharded(self, shard: str) -> RedisKeys:
        """The same names under the hash tag `{prefix:shard}`: one slot per shard on a
        Redis Cluster. Never used on a single Redis, whose names stay as they are."""
        return RedisKeys(self.prefix, shard)

    def batch_lane(self) -> RedisKeys:
        """The batch lane's queue keys (documentation/queue.md, "Batch lane"): the same names
        under the prefix `prefix:batch`, so `{prefix:batch}` on a single Redis and
        `{prefix:batch:<provider>}` per shard on a Redis Cluster. A previous version never
        reads them, so it never meets a `processing_mode: "batch"` job it cannot parse."""
        return RedisKeys(f"{self.prefix}:batch", self.shard)

    def request(self, queue_id: str) -> str:
        """Hash: the request's status, job, attempts, timestamps, lease token, result, error."""
        return f"{self.tag}:req:{queue_id}"

    def ready(self, provider: LLMProviderType) -> str:
        """Sorted set per provider: claimable ids, score = order (priority credit, then FIFO),
        so a worker claims only for providers whose breaker allows it."""
        return f"{self.tag}:ready:{provider.value}"

    @property
    def delayed(self) -> str:
        """Sorted set: ids waiting out a retry backoff, score = not-before ms."""
        return f"{self.tag}:delayed"

    @property
    def leases(self) -> str:
        """Sorted set: ids being processed, score = lease deadline ms; the reaper's input."""
        return f"{self.tag}:leases"

    @property
    def expiry(self) -> str:
        """Sorted set: waiting (ready or delayed) ids, score = expires_at ms; its size is
        the queue depth that QUEUE_MAX_SIZE bounds."""
        return f"{self.tag}:expiry"

    @property
    def enqueued(self) -> str:
        """Sorted set: waiting ids, score = queued_at ms, for the oldest-request age."""
        return f"{self.tag}:enqueued"

    @property
    def retention(self) -> str:
        """Sorted set: ended ids, score = when their record may be deleted."""
        return f"{self.tag}:retention"

    @property
    def unannounced(self) -> str:
        """Sorted set: ended ids whose result event is not yet in the outbox, score = when
        a relay may take it (again); the retention purge skips these."""
        return f"{self.tag}:unannounced"

    @property
    def depth(self) -> str:
        """Hash provider -> waiting count, kept by the scripts so stats cost O(1)."""
        return f"{self.tag}:depth"

    @property
    def priorities(self) -> str:
        """Hash priority -> waiting count, for the depth-by-priority metric."""
        return f"{self.tag}:prio"

    @property
    def fence(self) -> str:
        """String (INCR): monotonically increasing lease tokens; a stale token loses."""
        return f"{self.tag}:fence"

    @property
    def sequence(self) -> str:
        """Hash (`ms`, `n`): the millisecond of the last enqueue and how many arrived in it,
        which breaks ties between enqueues in the same millisecond (FIFO)."""
        return f"{self.tag}:seq"

    @property
    def memory_probe(self) -> str:
        """String: written (with a short expiry) by each memory check, to learn whether
        Redis still accepts writes or refuses them at its maxmemory."""
        return f"{self.tag}:memprobe"

    @property
    def wake(self) -> str:
        """List: a short signal pushed on new work, so idle workers BLPOP instead of polling."""
        return f"{self.tag}:wake"

    @property
    def ended(self) -> str:
        """Sorted set: ended ids whose result is announced, score = the order announced
        (`ended_sequence`); the oldest go first when over the bounds on ended records."""
        return f"{self.tag}:ended"

    @property
    def ended_size(self) -> str:
        """Hash id -> bytes of its record as stored, so `ended_bytes` stays exact."""
        return f"{self.tag}:ended:size"

    @property
    def ended_bytes(self) -> str:
        """String (INCRBY): the sum of `ended_size`, so the byte bound is checked in O(1)."""
        return f"{self.tag}:ended:bytes"

    @property
    def ended_sequence(self) -> str:
        """String (INCR): the order in which ended records were announced."""
        return f"{self.tag}:ended:seq"

    @property
    def reaped_expired(self) -> str:
        """List: ids a claim's reap made EXPIRED, not yet reported; the next `reap()` of any
        worker reports them, so a finding is not lost with the process that found it."""
        return f"{self.tag}:reaped:expired"

    @property
    def reaped_failed(self) -> str:
        """List: ids a claim's reap made FAILED, not yet reported (as `reaped_expired`)."""
        return f"{self.tag}:reaped:failed"

    @property
    def reaped_counts(self) -> str:
        """Hash: `lease_expiries` and `promoted` counted by claims' reaps, not yet reported."""
        return f"{self.tag}:reaped:counts"

    @property
    def outbox_due(self) -> str:
        """Sorted set: pending result deliveries, score = when due (ms); a claim hides one
        by moving its score past the lease."""
        return f"{self.tag}:outbox:due"

    def outbox_created(self, channel: DeliveryChannel) -> str:
        """Sorted set per channel: pending deliveries, score = when added, for the outbox
        size and age metrics."""
        return f"{self.tag}:outbox:created:{channel.value}"

    def outbox_delivery(self, delivery_id: str) -> str:
        """Hash: one delivery (its JSON, payload until sent, state, attempts, last error)."""
        return f"{self.tag}:outbox:d:{delivery_id}"

    @property
    def outbox_forget(self) -> str:
        """Sorted set: ended deliveries, score = when their state is forgotten (ms)."""
        return f"{self.tag}:outbox:forget"

    def outbox_request(self, request_id: UUID) -> str:
        """Set: the delivery ids of one request's result, for the status endpoint."""
        return f"{self.tag}:outbox:req:{request_id}"

    def idempotency(self, key_hash: str) -> str:
        """String: an Idempotency-Key (hashed) -> the request it created, for the retention."""
        return f"{self.tag}:idem:{key_hash}"

    def idempotency_fence(self, key_hash: str, request_id: UUID) -> str:
        """String: set by `release` so that a reservation of `request_id` whose reply was
        lost can never land after it was withdrawn (kept for a short while)."""
        return f"{self.idempotency(key_hash)}:fence:{request_id}"

    @property
    def position_judgements(self) -> str:
        """Hash (provider, model) as JSON -> randomized judgements counted, for the
        position-bias report; bounded to POSITION_BIAS_MAX_MODELS fields."""
        return f"{self.tag}:posbias:judgements"

    @property
    def position_first_wins(self) -> str:
        """Hash (provider, model) as JSON -> how many of those the first-presented essay won;
        written in the same script as `position_judgements`."""
        return f"{self.tag}:posbias:first"

    def active(self, caller: str) -> str:
        """Sorted set: a caller's requests waiting or running, for its `max_queued` quota
        (written by the queue scripts: `enqueue.lua` adds, `finish` in `_lib.lua` removes)."""
        return f"{self.tag}:active:{caller}"

    def rate(self, caller: str) -> str:
        """String: a caller's theoretical arrival time (ms) for its requests-per-minute quota;
        expires a second after it, so an idle caller keeps no key."""
        return f"{self.tag}:rate:{caller}"

    def drained(self, provider: LLMProviderType) -> str:
        """Sorted set: a provider's queued requests completed in the drain-rate window, queue
        id by completion time (ms), written by every worker (`drain_rate.RedisDrainRate`)."""
        return f"{self.tag}:drained:{provider.value}"

    def response_cache(self, call_key: str) -> str:
        """String: a judgement kept by the development cache (never bound in production)."""
        return f"{self.tag}:devcache:{call_key}"

    @property
    def spills(self) -> str:
        """Sorted set: open spills of the batch lane (`SpillStore`), score = started_at ms."""
        return f"{self.tag}:spills"

    def spill(self, spill_id: str) -> str:
        """Hash: one spill's record (`record`: its JSON, `state`, `batch`: the vendor's
        batch as JSON once SUBMITTED), kept until every entry is settled."""
        return f"{self.tag}:spill:{spill_id}"

    def spill_settled(self, spill_id: str) -> str:
        """Set: the custom ids of a spill whose rows were applied to the queue."""
        return f"{self.tag}:spill:{spill_id}:settled"

    def spill_hold(self, spill_id: str) -> str:
        """String (with an expiry): the replica that polls and ingests the spill now."""
        return f"{self.tag}:spill:{spill_id}:hold"
