"""What the cluster drill needs besides the processes: a key prefix whose shards fall on the
masters the drill wants, requests that carry a marker the fake vendor can count, and the
clean-up of every key under the prefix on every master."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

from common_core.enums import LLMProviderType
from services.llm_provider_service.di.stores import STORES
from services.llm_provider_service.redis.keys import RedisKeys
from tests.support.fake_vendors import FakeUpstream
from tests.support.redis_server import ClusterNode, RedisClusterServer

# The shards of the stores a request touches on its way in and out besides its provider's
# queue (`di/stores.py`): idempotency, quotas, drain rate, position bias, the result outbox,
# and the queue's global wake list (`redis/sharded_queue.py`).
STORE_SHARDS = (*(store.shard for store in STORES), "outbox", "wake")


@dataclass(frozen=True)
class Layout:
    """A key prefix under which `down`'s queue shard is on `master` and nothing else the
    drill uses is: killing `master` takes exactly that one provider's queue away."""

    prefix: str
    down: LLMProviderType
    up: LLMProviderType
    master: ClusterNode


def shard_key(prefix: str, shard: str) -> str:
    """A key of `shard`'s slot: the tag decides the slot, so any name in it will do."""
    return RedisKeys(prefix).sharded(shard).request("x")


def find_layout(
    cluster: RedisClusterServer, down: LLMProviderType, up: LLMProviderType, tries: int = 2000
) -> Layout:
    """A fresh prefix whose `down` queue shard shares its master with no store shard and not
    with `up`'s queue shard (about one prefix in twenty does, with three masters)."""
    client = RedisCluster.from_url(cluster.url)
    try:
        for _ in range(tries):
            prefix = f"drill{uuid.uuid4().hex[:10]}"

            def port(shard: str, prefix: str = prefix) -> int:
                node = client.get_node_from_key(shard_key(prefix, shard))
                return int(node.port)

            killed = port(down.value)
            if all(port(s) != killed for s in (up.value, *STORE_SHARDS)):
                master = next(n for n in cluster.nodes if n.port == killed)
                return Layout(prefix, down, up, master)
    finally:
        client.close()
    raise AssertionError(f"no prefix in {tries} puts {down.value} alone on a master")


def ensure_masters_running(cluster: RedisClusterServer) -> None:
    """Restart every master that is not running (a test may leave one SIGKILLed)."""
    for node in cluster.nodes:
        if node.process is None or node.process.poll() is not None:
            cluster.restart(node)


async def delete_prefix(url: str, prefix: str) -> None:
    """Unlink every key under `prefix` (every shard of it), on every master."""
    client = AsyncRedisCluster.from_url(url, decode_responses=True)
    try:
        async for key in client.scan_iter(match=f"{{{prefix}*", count=1000):
            await client.unlink(key)
    finally:
        await client.aclose()


def comparison(provider: LLMProviderType, marker: str) -> dict[str, object]:
    """An async comparison for `provider` whose essays carry `marker`, so that the fake
    vendor's records tell which request each call was for."""
    return {
        "user_prompt": "Which essay answers the question better?",
        "essay_a": f"Essay one {marker}: a careful argument.",
        "essay_b": f"Essay two {marker}: a lively story.",
        "processing_mode": "async",
        "llm_config_overrides": {"provider_override": provider.value},
    }


@dataclass
class Submissions:
    """What the API answered: the acknowledged (202) ids with their provider and marker, and
    every other answer as (provider, status, Retry-After)."""

    acknowledged: dict[str, LLMProviderType] = field(default_factory=dict)
    markers: dict[str, str] = field(default_factory=dict)
    refused: list[tuple[LLMProviderType, int, str | None]] = field(default_factory=list)
    refusal_seconds: list[float] = field(default_factory=list)  # how long each refusal took

    async def submit(self, client: httpx.AsyncClient, provider: LLMProviderType) -> int:
        """POST one comparison for `provider`; its status code."""
        marker = f"[m-{uuid.uuid4().hex[:12]}]"
        started = time.monotonic()
        response = await client.post("/api/v1/comparison", json=comparison(provider, marker))
        if response.status_code == 202:
            queue_id = response.json()["queue_id"]
            self.acknowledged[queue_id] = provider
            self.markers[queue_id] = marker
        else:
            self.refused.append(
                (provider, response.status_code, response.headers.get("retry-after"))
            )
            self.refusal_seconds.append(time.monotonic() - started)
        return response.status_code

    def of(self, provider: LLMProviderType) -> list[str]:
        return [q for q, p in self.acknowledged.items() if p is provider]


def vendor_answers(fake: FakeUpstream, markers: dict[str, str]) -> Counter[str]:
    """How many answers the fake vendors gave each request (by its marker): requests the
    fake answered as a vendor would, a slow (`timeout`) one included, failures not."""
    answered: Counter[str] = Counter()
    by_marker = {marker: queue_id for queue_id, marker in markers.items()}
    for record in fake.requests:
        if record.fault not in (None, "timeout"):
            continue
        text = record.body.decode(errors="replace")
        for marker, queue_id in by_marker.items():
            if marker in text:
                answered[queue_id] += 1
                break
    return answered


def completions(events: Iterable[object]) -> Counter[str]:
    """`queue_status_changed` events that say completed, per queue id."""
    found: Counter[str] = Counter()
    for event in events:
        data = getattr(event, "data", {})
        if data.get("status") == "completed":
            found[str(data.get("queue_id"))] += 1
    return found
