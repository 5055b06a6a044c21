"""The Lua scripts of the Redis adapters, read from `lua/`, and `register`, which makes one
callable on a single Redis or on a Redis Cluster."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from hashlib import sha1
from importlib import resources
from typing import Any, Protocol

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError

from services.llm_provider_service.redis.client import RedisClient


def lua(*names: str) -> str:
    """The scripts `names` (paths under `lua/`, without `.lua`) joined into one script: a
    shared prelude first, then the script that uses it, so each call is one atomic unit."""
    folder = resources.files("services.llm_provider_service.redis") / "lua"
    return "\n".join((folder / f"{name}.lua").read_text() for name in names)


class Script(Protocol):
    """A registered script: `await script(keys=[...], args=[...])` runs it by its SHA."""

    async def __call__(
        self, keys: Sequence[str] | None = None, args: Iterable[Any] | None = None
    ) -> Any: ...


def register(redis: RedisClient, source: str) -> Script:
    """`source` as a `Script` of `redis`: redis-py's own on a single Redis (as always); on
    a Redis Cluster a `ClusterScript`, which loads it only where its keys live."""
    if isinstance(redis, RedisCluster):
        return ClusterScript(redis, source)
    return redis.register_script(source)


class ClusterScript:
    """A script on a Redis Cluster, run with EVALSHA on the master of its keys' slot. Each
    master keeps its own script cache (empty after a restart), so a NOSCRIPT reply is
    answered by EVAL on that same master, which runs the script and caches it there.
    redis-py's script would SCRIPT LOAD instead, which a cluster client sends to every
    master: it fails while any one master is down, even for keys that live elsewhere."""

    def __init__(self, redis: RedisCluster, source: str) -> None:
        self._redis = redis
        self._source = source
        self.sha = sha1(source.encode(), usedforsecurity=False).hexdigest()

    async def __call__(
        self, keys: Sequence[str] | None = None, args: Iterable[Any] | None = None
    ) -> Any:
        names, values = list(keys or []), list(args or [])
        try:
            return await self._redis.evalsha(self.sha, len(names), *names, *values)
        except NoScriptError:
            return await self._redis.eval(self._source, len(names), *names, *values)
