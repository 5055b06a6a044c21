"""A private Redis Cluster of three masters per test session, whose nodes tests may kill
and restart: `redis-server --cluster-enabled yes` three times, then `redis-cli --cluster
create`. Each node keeps AOF with `appendfsync always`, and its `nodes.conf`, so a node
restarted after SIGKILL rejoins the cluster as the master of the same slots, with every
write it acknowledged."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis
from redis.cluster import RedisCluster

from devtools.redis_server import RedisServer, free_port


class ClusterNode(RedisServer):
    """One master of the cluster: a `RedisServer` with cluster mode on, and a cluster bus
    port of its own (free, rather than the default port + 10000)."""

    def __init__(self, directory: Path, port: int) -> None:
        super().__init__(directory, port)
        self.bus_port = free_port()

    def cluster_args(self) -> list[str]:
        return [
            "--cluster-enabled", "yes",
            "--cluster-port", str(self.bus_port),
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", "2000",
            # A master that is down leaves its slots unserved; the other masters keep
            # serving theirs (there are no replicas to fail over to).
            "--cluster-require-full-coverage", "no",
        ]  # fmt: skip

    def command(self) -> list[str]:
        return [*super().command(), *self.cluster_args()]


class RedisClusterServer:
    """Three masters on free loopback ports, no replicas, slots split evenly."""

    def __init__(self, directory: Path, masters: int = 3) -> None:
        self.directory = directory
        self.nodes = [ClusterNode(directory / f"node{i}", free_port()) for i in range(masters)]

    @property
    def url(self) -> str:
        """Any one node: the client learns the rest from it (`REDIS_URL` with `REDIS_CLUSTER`)."""
        return self.nodes[0].url

    def start(self) -> None:
        """Start the nodes and join them; if any step fails, the nodes already started are
        killed before the error goes on (a session fixture never reaches its clean-up then)."""
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not installed (apt-get install -y redis-tools)")
        try:
            for node in self.nodes:
                node.start()
            create = ["--cluster", "create"] + [f"127.0.0.1:{node.port}" for node in self.nodes]
            subprocess.run(
                [cli, *create, "--cluster-replicas", "0", "--cluster-yes"],
                check=True,
                capture_output=True,
                timeout=60,
            )
            self.wait_ok()
        except BaseException:
            for node in self.nodes:
                node.kill()
            raise

    def wait_ok(self, within: float = 30.0) -> None:
        """Until every node says `cluster_state:ok` and a cluster client can write to every
        master's slots."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if all(self._state(node) == "ok" for node in self.nodes) and self._writable():
                return
            time.sleep(0.1)
        raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")

    @staticmethod
    def _state(node: RedisServer) -> str:
        client = redis.Redis(port=node.port, socket_connect_timeout=0.2, decode_responses=True)
        try:
            return str(client.cluster("INFO").get("cluster_state", "down"))
        except redis.RedisError:
            return "down"
        finally:
            client.close()

    def _writable(self) -> bool:
        try:
            client = RedisCluster.from_url(self.url, socket_connect_timeout=0.5)
        except redis.RedisError:
            return False
        try:
            for slot_key in ("{a}", "{b}", "{c}", "{d}", "{e}"):
                client.set(f"{slot_key}:probe", "1", px=1000)
            return True
        except redis.RedisError:
            return False
        finally:
            client.close()

    def master_of(self, key: str) -> ClusterNode:
        """The node that serves `key`'s slot."""
        client = RedisCluster.from_url(self.url)
        try:
            port = client.get_node_from_key(key).port  # type: ignore[no-untyped-call]
        finally:
            client.close()
        return next(node for node in self.nodes if node.port == port)

    def kill(self, node: ClusterNode) -> None:
        """SIGKILL one master: its slots are unserved until `restart`."""
        node.kill()

    def restart(self, node: ClusterNode) -> None:
        """Start a killed (or running, then SIGKILLed) master again and wait for the cluster."""
        node.restart(kill=True)
        self.wait_ok()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def flush(self) -> None:
        for node in self.nodes:
            node.flush()
