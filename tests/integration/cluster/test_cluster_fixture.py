"""The test Redis Cluster itself: three masters that share the slots, and a master that
keeps every acknowledged write through SIGKILL and restart."""

from __future__ import annotations

import subprocess

import pytest
from redis.asyncio.cluster import RedisCluster

from tests.support.redis_server import RedisClusterServer


async def test_three_masters_serve_the_slots(redis_cluster: RedisClusterServer) -> None:
    client = RedisCluster.from_url(redis_cluster.url, decode_responses=True)
    try:
        await client.initialize()
        ports = {node.port for node in client.get_primaries()}
        assert ports == {node.port for node in redis_cluster.nodes}
        await client.set("{fixture-a}:k", "1")
        assert await client.get("{fixture-a}:k") == "1"
    finally:
        await client.aclose()


async def test_a_killed_master_keeps_what_it_acknowledged(
    redis_cluster: RedisClusterServer,
) -> None:
    key = "{fixture-kill}:k"
    master = redis_cluster.master_of(key)
    client = RedisCluster.from_url(redis_cluster.url, decode_responses=True)
    try:
        await client.set(key, "kept")
    finally:
        await client.aclose()
    redis_cluster.kill(master)
    assert master.process is not None
    assert master.process.poll() is not None  # SIGKILLed
    redis_cluster.restart(master)
    client = RedisCluster.from_url(redis_cluster.url, decode_responses=True)
    try:
        assert await client.get(key) == "kept"
        assert redis_cluster.master_of(key).port == master.port
    finally:
        await client.aclose()


def test_a_cluster_that_fails_to_form_leaves_no_node_running(tmp_path, monkeypatch):
    """A session fixture never reaches its clean-up when starting fails, so `start` must
    kill the nodes it already started."""
    cluster = RedisClusterServer(tmp_path)

    def refuse(*args: object, **kwargs: object) -> None:
        raise subprocess.CalledProcessError(1, "redis-cli --cluster create")

    monkeypatch.setattr(subprocess, "run", refuse)
    with pytest.raises(subprocess.CalledProcessError):
        cluster.start()

    assert all(node.process is not None for node in cluster.nodes)  # they were started
    assert [node.process.poll() is None for node in cluster.nodes if node.process] == [
        False,
        False,
        False,
    ]
