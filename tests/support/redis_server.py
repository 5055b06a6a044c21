"""A private Redis server, or a private Redis Cluster, per test session: see
`devtools.redis_server` and `devtools.redis_cluster`."""

from devtools.redis_cluster import ClusterNode, RedisClusterServer
from devtools.redis_server import RedisServer, free_port

__all__ = ["ClusterNode", "RedisClusterServer", "RedisServer", "free_port"]
