"""The Redis adapters of the service's ports, their key names, Lua scripts and error translation.

Imported as `services.llm_provider_service.redis`; its modules import the redis library with
absolute imports (`from redis.asyncio import Redis`), which this package cannot shadow.
"""
