"""A private Redis server per test session: see `devtools.redis_server`."""

from devtools.redis_server import RedisServer, free_port

__all__ = ["RedisServer", "free_port"]
