"""Every Redis key name, pinned: a rolling deploy shares one Redis, so the names never change."""

from __future__ import annotations

import inspect
from uuid import UUID

from common_core.enums import DeliveryChannel, LLMProviderType
from services.llm_provider_service.redis.keys import RedisKeys

REQUEST = UUID("0b9f2c4e-1d3a-4c5b-8e7f-6a5b4c3d2e1f")

# Each key of RedisKeys("llmq") for fixed ids, as the version on main wrote it.
PINNED = {
    "tag": "{llmq}",
    "request": "{llmq}:req:q-1",
    "ready": "{llmq}:ready:anthropic",
    "delayed": "{llmq}:delayed",
    "leases": "{llmq}:leases",
    "expiry": "{llmq}:expiry",
    "enqueued": "{llmq}:enqueued",
    "retention": "{llmq}:retention",
    "unannounced": "{llmq}:unannounced",
    "depth": "{llmq}:depth",
    "priorities": "{llmq}:prio",
    "fence": "{llmq}:fence",
    "sequence": "{llmq}:seq",
    "memory_probe": "{llmq}:memprobe",
    "wake": "{llmq}:wake",
    "ended": "{llmq}:ended",
    "ended_size": "{llmq}:ended:size",
    "ended_bytes": "{llmq}:ended:bytes",
    "ended_sequence": "{llmq}:ended:seq",
    "reaped_expired": "{llmq}:reaped:expired",
    "reaped_failed": "{llmq}:reaped:failed",
    "reaped_counts": "{llmq}:reaped:counts",
    "outbox_due": "{llmq}:outbox:due",
    "outbox_created": "{llmq}:outbox:created:webhook",
    "outbox_delivery": "{llmq}:outbox:d:e-1:kafka",
    "outbox_forget": "{llmq}:outbox:forget",
    "outbox_request": f"{{llmq}}:outbox:req:{REQUEST}",
    "idempotency": "{llmq}:idem:abc123",
    "idempotency_fence": f"{{llmq}}:idem:abc123:fence:{REQUEST}",
    "position_judgements": "{llmq}:posbias:judgements",
    "position_first_wins": "{llmq}:posbias:first",
    "active": "{llmq}:active:cj",
    "rate": "{llmq}:rate:cj",
    "drained": "{llmq}:drained:openai",
    "response_cache": "{llmq}:devcache:call-1",
    "spills": "{llmq}:spills",
    "spill": "{llmq}:spill:s-1",
    "spill_settled": "{llmq}:spill:s-1:settled",
    "spill_hold": "{llmq}:spill:s-1:hold",
}

ARGUMENTS = {
    "request": ("q-1",),
    "ready": (LLMProviderType.ANTHROPIC,),
    "outbox_created": (DeliveryChannel.WEBHOOK,),
    "outbox_delivery": ("e-1:kafka",),
    "outbox_request": (REQUEST,),
    "idempotency": ("abc123",),
    "idempotency_fence": ("abc123", REQUEST),
    "active": ("cj",),
    "rate": ("cj",),
    "drained": (LLMProviderType.OPENAI,),
    "response_cache": ("call-1",),
    "spill": ("s-1",),
    "spill_settled": ("s-1",),
    "spill_hold": ("s-1",),
}


def _names() -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(RedisKeys)
        if not name.startswith("_")
        and name not in ("sharded", "batch_lane")
        and (callable(member) or isinstance(member, property))
    }


def _built(keys: RedisKeys, name: str) -> str:
    member = getattr(keys, name)
    return str(member(*ARGUMENTS[name]) if callable(member) else member)


def test_every_key_name_is_pinned_byte_for_byte():
    keys = RedisKeys("llmq")

    assert {name: _built(keys, name) for name in _names()} == PINNED


def test_the_default_prefix_is_llmq_and_every_key_carries_its_hash_tag():
    keys = RedisKeys()

    assert keys == RedisKeys("llmq")
    assert all(_built(keys, name).startswith("{llmq}") for name in _names())


def test_a_shard_keeps_every_name_under_its_own_hash_tag():
    """On a Redis Cluster each shard's keys share one slot: the same names as on a single
    Redis, with `{llmq:<shard>}` in place of `{llmq}`."""
    shard = RedisKeys("llmq").sharded("openai")

    assert shard.tag == "{llmq:openai}"
    assert {name: _built(shard, name) for name in _names()} == {
        name: key.replace("{llmq}", "{llmq:openai}", 1) for name, key in PINNED.items()
    }
    assert RedisKeys("llmq").shard is None  # a single Redis has no shards


def test_the_batch_lane_keeps_every_name_under_its_own_prefix():
    """The batch lane's queue (`queue.md`, "Batch lane"): `{llmq:batch}` on a single Redis,
    `{llmq:batch:<provider>}` per shard on a Redis Cluster; never a realtime key."""
    lane = RedisKeys("llmq").batch_lane()

    assert lane.tag == "{llmq:batch}"
    assert {name: _built(lane, name) for name in _names()} == {
        name: key.replace("{llmq}", "{llmq:batch}", 1) for name, key in PINNED.items()
    }
    assert lane.sharded("openai").tag == "{llmq:batch:openai}"
    assert RedisKeys("llmq").sharded("openai").tag == "{llmq:openai}"
